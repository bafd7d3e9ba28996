"""Every public page is ready to be shared: its own Open Graph title, description and image."""

from io import BytesIO
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.html import parse

pytestmark = pytest.mark.django_db

CALF = "/articles/tight-calf-muscles-low-back-pain/"


@pytest.fixture(autouse=True)
def _static_files_answer(settings):
    # Production serves collected files; here WhiteNoise reads the source folders instead,
    # so an og:image the page names must be a file the site really has.
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture
def pages(seeded, booking_rules, service, therapist, next_monday, at):
    """Every public page a patient might share, by name, at its English address."""
    day = next_monday.isoformat()
    details = reverse("booking:details", args=[service.slug, therapist.slug, day, at(10).time()])
    return {
        "home": "/",
        "articles": "/articles/",
        "calf article": CALF,
        "topic": "/articles/topics/low-back-pain/",
        "book": "/book/",
        "book: therapist": f"/book/{service.slug}/",
        "book: day": f"/book/{service.slug}/{therapist.slug}/",
        "book: time": f"/book/{service.slug}/{therapist.slug}/{day}/",
        "book: details": details,
        "newsletter": "/newsletter/",
    }


def open_graph(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    return parse(response)


def assert_shareable(client, page, path, language):
    meta = page.meta
    for key in ("og:title", "og:description", "og:image", "og:url"):
        assert meta.get(key, "").strip(), f"{path} has no {key}"
    assert meta["og:url"] == settings.SITE_URL + path
    image = urlsplit(meta["og:image"])
    assert f"{image.scheme}://{image.netloc}" == settings.SITE_URL, path  # absolute, ours
    fetched = client.get(image.path)
    assert fetched.status_code == 200, meta["og:image"]
    assert fetched["Content-Type"].startswith("image/")
    expected, other = ("es_US", "en_US") if language == "es" else ("en_US", "es_US")
    assert meta["og:locale"] == expected and meta["og:locale:alternate"] == other
    assert meta["twitter:card"] == "summary_large_image"


def test_every_public_page_has_its_own_title_description_image_and_url(client, pages):
    seen = {}
    for name, path in pages.items():
        page = open_graph(client, path)
        assert_shareable(client, page, path, "en")
        seen[name] = page.meta
    home = seen["home"]
    for name in ("articles", "calf article", "book", "book: details", "newsletter"):
        assert seen[name]["og:title"] != home["og:title"], name
    for name in ("book", "book: therapist", "newsletter"):
        assert seen[name]["og:description"] != home["og:description"], name
    assert seen["book"]["og:title"] != seen["newsletter"]["og:title"]
    assert seen["calf article"]["og:type"] == "article"


def test_book_and_newsletter_describe_themselves_not_the_site(client, pages):
    home = parse(client.get("/"))
    for path in ("/book/", "/newsletter/"):
        page = parse(client.get(path))
        assert page.title != home.title
        assert page.meta["description"] != home.meta["description"]


def test_the_spanish_twins_are_shareable_in_spanish(client, pages):
    for name, path in pages.items():
        spanish = "/es" + path
        page = open_graph(client, spanish)
        assert_shareable(client, page, spanish, "es")
        assert '<html lang="es"' in client.get(spanish).content.decode(), name


def test_the_default_card_is_the_clinics_own_1200_by_630(client, pages):
    page = open_graph(client, "/")
    card = client.get(urlsplit(page.meta["og:image"]).path)
    assert card.status_code == 200
    with Image.open(BytesIO(b"".join(card.streaming_content))) as image:
        assert image.size == (1200, 630)
    assert page.meta["og:image:width"] == "1200" and page.meta["og:image:height"] == "630"
    assert page.meta["og:image:alt"]


def test_an_article_with_a_hero_image_shares_that_image(
    client, clinic, make_article, django_capture_on_commit_callbacks
):
    photo = BytesIO()
    Image.new("RGB", (1600, 900), "#0b5d5b").save(photo, "JPEG")
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(
            title="Stretching the calf",
            hero_image=SimpleUploadedFile("calf.jpg", photo.getvalue(), "image/jpeg"),
            hero_alt="A calf being stretched against a wall",
        )
    page = open_graph(client, article.get_absolute_url())
    image = page.meta["og:image"]
    assert image.startswith(settings.SITE_URL + "/media/") and "social-card" not in image
    assert client.get(urlsplit(image).path).status_code == 200
    assert page.meta["og:image:alt"] == "A calf being stretched against a wall"


def test_the_404_page_names_no_canonical_address(client, seeded):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not [link for link in parse(response).links if link.get("rel") == "canonical"]


def test_pages_reached_by_a_private_link_name_no_canonical_address(client, appointment):
    from booking.links import manage_token

    for path in (
        reverse("booking:confirmation", args=[appointment.public_token]),
        reverse("booking:manage", args=[manage_token(appointment)]),
    ):
        page = parse(client.get(path))
        assert not [link for link in page.links if link.get("rel") == "canonical"], path
