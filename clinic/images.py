"""Uploaded images, kept only as fresh copies of their pixels.

A camera's metadata (EXIF, GPS, XMP, ICC) can say where a photo was taken, with which
device and by whom. Every upload (article heroes, therapist photos) is decoded, turned
upright by its EXIF orientation and encoded again from the pixels alone, before it is
stored: the file as sent is never kept or served.
"""

from io import BytesIO
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps

# A web format is kept (a JPEG stays a JPEG); anything else becomes a lossless PNG.
ENCODINGS = {
    "JPEG": (".jpg", {"quality": 90}),
    "PNG": (".png", {"optimize": True}),
    "WEBP": (".webp", {"quality": 90}),
}
UNREADABLE = _("This file is not an image that can be read. Upload a JPEG, PNG or WebP.")


class CleanImage(ContentFile):
    """A re-encoded upload: its name is random, its bytes hold no metadata."""


def reencode(source):
    """`source` (an image file) as a fresh one without metadata: (bytes, extension)."""
    try:
        source.seek(0)
        with Image.open(source) as uploaded:
            kind = uploaded.format
            upright = ImageOps.exif_transpose(uploaded)
            transparent = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            pixels = upright.convert("RGBA" if transparent else "RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationError(UNREADABLE, code="invalid_image") from exc
    if kind not in ENCODINGS or (kind == "JPEG" and transparent):
        kind = "PNG"
    extension, options = ENCODINGS[kind]
    # A new image gets the pixels and nothing else: no info dict to carry EXIF, XMP or ICC.
    fresh = Image.new(pixels.mode, pixels.size)
    fresh.paste(pixels)
    buffer = BytesIO()
    fresh.save(buffer, kind, **options)
    return buffer.getvalue(), extension


def sanitise_upload(field_file):
    """Swap a new, not yet stored upload in `field_file` for its re-encoded copy.

    Files already stored, and uploads already swapped, are left alone, so calling it from
    both `clean()` and `save()` re-encodes once. The copy gets a random name: the name a
    file was sent with can say who is in it. Raises ValidationError for an unreadable file.
    """
    # `_committed` is how Django's FileField itself tells a new upload from a stored file.
    if not field_file or field_file._committed or isinstance(field_file.file, CleanImage):
        return
    data, extension = reencode(field_file.file)
    name = f"{uuid4().hex}{extension}"
    field_file.file = CleanImage(data, name=name)
    field_file.name = name


def square_webp_sizes(name, widths, *, storage=None):
    """Square WebP copies of the stored image `name` (centre-cropped), one per width in
    `widths` up to the image's own size, stored beside it as `<stem>-<width>.webp`.

    Returns {width (str): stored name}. Made from the stored, already metadata-free copy,
    so the sizes hold no metadata either.
    """
    from django.core.files.storage import default_storage

    storage = storage or default_storage
    with storage.open(name, "rb") as source, Image.open(source) as original:
        image = ImageOps.exif_transpose(original).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    stem = name.rsplit(".", 1)[0]
    sizes = {}
    for width in sorted({min(w, side) for w in widths}):
        buffer = BytesIO()
        square.resize((width, width), Image.Resampling.LANCZOS).save(buffer, "WEBP", quality=80)
        target = f"{stem}-{width}.webp"
        storage.delete(target)  # a deterministic name: the media view finds the owner by it
        sizes[str(width)] = storage.save(target, ContentFile(buffer.getvalue()))
    return sizes
