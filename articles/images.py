"""Responsive sizes of a hero image, re-encoded (which also drops camera metadata)."""

from io import BytesIO
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

WIDTHS = (480, 960, 1600)


def make_renditions(field_file):
    """Write WebP copies of `field_file` at each width up to its own; return {width: name}."""
    field_file.open("rb")
    try:
        with Image.open(field_file) as original:
            image = ImageOps.exif_transpose(original).convert("RGB")
    finally:
        field_file.close()
    stem = PurePosixPath(field_file.name).stem
    renditions = {}
    widths = [w for w in WIDTHS if w < image.width] + [min(image.width, WIDTHS[-1])]
    for width in sorted(set(widths)):
        height = round(image.height * width / image.width)
        resized = image.resize((width, height), Image.Resampling.LANCZOS)
        buffer = BytesIO()
        resized.save(buffer, "WEBP", quality=80)
        name = default_storage.save(
            f"articles/hero/sizes/{stem}-{width}.webp", ContentFile(buffer.getvalue())
        )
        renditions[str(width)] = {"name": name, "height": height}
    return renditions
