"""A hero image's responsive WebP sizes, and the stored files behind an article's hero.

The uploaded original is re-encoded without metadata before it is stored
(clinic.images); the sizes are made from that copy. Sizes live in a folder named after the
article (articles/hero/sizes/<pk>/) so the media view can tell whose they are and serve
them only while the article is live (or to staff).
"""

import re
from io import BytesIO
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

WIDTHS = (480, 960, 1600)
SIZES_DIR = "articles/hero/sizes"
SIZE_NAME = re.compile(rf"{SIZES_DIR}/(?P<pk>[0-9]{{1,18}})/[A-Za-z0-9_-]{{1,150}}\.webp")


def size_names(renditions):
    """The stored names of the sizes in `renditions` ({width: {"name", "height"}})."""
    return {size["name"] for size in (renditions or {}).values()}


def sizes_belong_to(renditions, article_pk):
    """Whether every size is in `article_pk`'s folder (older sizes were not)."""
    names = size_names(renditions)
    return bool(names) and all(
        (match := SIZE_NAME.fullmatch(name)) and int(match["pk"]) == article_pk for name in names
    )


def make_renditions(*, article_pk, name, data=None):
    """Write WebP copies of the hero `name` (or of `data`, its bytes) at each width up to
    its own, in the article's folder; return {width: {"name", "height"}}."""
    source = BytesIO(data) if data is not None else default_storage.open(name, "rb")
    try:
        with Image.open(source) as original:
            image = ImageOps.exif_transpose(original).convert("RGB")
    finally:
        source.close()
    # New originals have random hex names; an older one's name may hold any character.
    stem = re.sub(r"[^A-Za-z0-9_-]", "", PurePosixPath(name).stem)[:60] or "hero"
    renditions = {}
    widths = [w for w in WIDTHS if w < image.width] + [min(image.width, WIDTHS[-1])]
    for width in sorted(set(widths)):
        height = round(image.height * width / image.width)
        resized = image.resize((width, height), Image.Resampling.LANCZOS)
        buffer = BytesIO()
        resized.save(buffer, "WEBP", quality=80)  # no exif= or icc_profile=: none is written
        stored = default_storage.save(
            f"{SIZES_DIR}/{article_pk}/{stem}-{width}.webp", ContentFile(buffer.getvalue())
        )
        renditions[str(width)] = {"name": stored, "height": height}
    return renditions


def delete_files(names):
    """Remove stored files; one already gone is fine."""
    for name in names:
        default_storage.delete(name)
