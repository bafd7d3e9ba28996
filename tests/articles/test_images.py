"""Hero images: stored without camera metadata, sizes written after commit, old sizes removed."""

from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from PIL import Image

from articles.models import Article
from articles.services import save_article

pytestmark = pytest.mark.django_db

CAMERA = "ACME-GPS-CAM-9000"
GPS = {1: "N", 2: (37.0, 46.0, 30.0), 3: "W", 4: (122.0, 25.0, 10.0)}


def gps_jpeg(name="IMG_0001.jpg", size=(1200, 600)):
    """A camera JPEG: maker, orientation "turn 90° clockwise", GPS position and an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA  # Make
    exif[0x0112] = 6  # Orientation: the pixels are stored on their side
    exif.get_ifd(0x8825).update(GPS)  # the GPS IFD
    buffer = BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "JPEG", exif=exif, icc_profile=b"ICC" * 50)
    upload = SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")
    with Image.open(BytesIO(upload.read())) as check:  # the fixture really carries them
        assert check.getexif().get_ifd(0x8825) and CAMERA in check.getexif().values()
    upload.seek(0)
    return upload


def assert_no_metadata(data, where):
    """`data` (an image file's bytes) carries no EXIF, GPS, XMP or ICC profile."""
    with Image.open(BytesIO(data)) as image:
        assert not image.getexif(), f"EXIF in {where}"
        assert not image.getexif().get_ifd(0x8825), f"GPS in {where}"
        assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp"} & set(image.info), where
    assert CAMERA.encode() not in data and b"Exif\x00\x00" not in data, where


def stored_files():
    root = Path(settings.MEDIA_ROOT)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_camera_photo_is_stored_upright_and_without_its_metadata(
    make_article, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(hero_image=gps_jpeg(), hero_alt="A calf being stretched")
    article.refresh_from_db()
    files = stored_files()
    assert len(files) == 1 + len(article.hero_renditions)  # the clean original and its sizes
    assert "IMG_0001" not in " ".join(files)  # the name it was sent with is not kept either
    for name in files:
        assert_no_metadata((Path(settings.MEDIA_ROOT) / name).read_bytes(), name)
    with Image.open(article.hero_image.path) as original:
        assert original.format == "JPEG" and original.size == (600, 1200)  # turned upright


def test_an_unreadable_image_is_refused_with_a_message(client, staff_user, author, clinic):
    buffer = BytesIO()
    Image.effect_noise((600, 300), 50).convert("RGB").save(buffer, "JPEG")
    broken = buffer.getvalue()[:-100]  # cut short: its header passes a check, its pixels do not
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:articles_article_add"),
        {
            "title": "T",
            "slug": "t",
            "summary": "S",
            "body": "B",
            "author": author.pk,
            "status": "draft",
            "hero_alt": "A picture",
            "hero_image": SimpleUploadedFile("broken.jpg", broken, content_type="image/jpeg"),
            "references-TOTAL_FORMS": "0",
            "references-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "not an image that can be read" in response.content.decode()
    assert not Article.objects.exists() and stored_files() == []


def test_a_save_that_rolls_back_writes_no_files(make_article, django_capture_on_commit_callbacks):
    article = make_article()
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        article.hero_image = gps_jpeg()
        article.hero_alt = "A calf"
        save_article(article=article)
        raise RuntimeError("something later in the same transaction failed")
    assert stored_files() == []
    article.refresh_from_db()
    assert not article.hero_image and article.hero_renditions == {}


def test_replacing_a_hero_deletes_its_old_sizes(make_article, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(hero_image=gps_jpeg(), hero_alt="First")
    article.refresh_from_db()
    first_sizes = {size["name"] for size in article.hero_renditions.values()}
    assert first_sizes <= set(stored_files())

    article.hero_image = gps_jpeg("second.jpg", size=(900, 500))
    with django_capture_on_commit_callbacks(execute=True):
        save_article(article=article)
    article.refresh_from_db()
    second_sizes = {size["name"] for size in article.hero_renditions.values()}
    assert second_sizes and not second_sizes & first_sizes
    assert second_sizes <= set(stored_files())
    assert not first_sizes & set(stored_files())  # the replaced sizes are gone

    article.hero_image = ""
    with django_capture_on_commit_callbacks(execute=True):
        save_article(article=article)
    assert not second_sizes & set(stored_files())  # removing the hero removes its sizes


def test_saving_again_keeps_the_sizes_it_has(make_article, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(hero_image=gps_jpeg(), hero_alt="A calf")
    article.refresh_from_db()
    before, sizes = stored_files(), article.hero_renditions
    article.title = "A new title"
    with django_capture_on_commit_callbacks(execute=True):
        save_article(article=article)
    article.refresh_from_db()
    assert stored_files() == before and article.hero_renditions == sizes
