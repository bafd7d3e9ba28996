"""The home page shows what the clinic offers: treatments with duration and price, the
therapists with photo and a line of bio, each a way into booking with it chosen; it stays
a cacheable, small page."""

import gzip
import io
import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from PIL import Image

from booking.models import Service, Therapist
from tests.articles.test_images import gps_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _seeded(seeded):
    return seeded


class Tags(HTMLParser):
    """Every start tag, with its attributes, and the headings' levels in page order."""

    def __init__(self):
        super().__init__()
        self.tags, self.headings = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))


def parse(page):
    parser = Tags()
    parser.feed(page)
    return parser


def section(page, title_id):
    start = page.index(f'aria-labelledby="{title_id}"')
    return page[start : page.index("</section>", start)]


def test_home_lists_each_bookable_treatment_with_duration_price_and_a_way_to_book_it(client):
    Service.objects.create(name="Hidden treatment", slug="hidden", duration_minutes=30, price=5)
    Service.objects.filter(slug="massage-90").update(is_active=False)
    page = client.get("/").content.decode()
    treatments = section(page, "treatments-title")
    for service in Service.objects.bookable():
        assert service.name in treatments
        assert f'href="/book/{service.slug}/"' in treatments
    assert "60 minutes · $90" in treatments and "30 minutes · $50" in treatments
    assert "Hidden treatment" not in treatments  # nobody offers it
    assert "90-minute massage" not in treatments  # not bookable online


def test_the_therapists_show_with_a_line_of_bio_and_book_with_them_chosen(client):
    Therapist.objects.filter(slug="ana-nguyen").update(is_active=False)
    page = client.get("/").content.decode()
    people = section(page, "therapists-title")
    assert "Maria Lopez" in people and "James Carter" in people and "Ana Nguyen" not in people
    assert "works mostly with low back and hip pain" in people
    assert 'href="/book/?therapist=maria-lopez"' in people
    # The link opens the treatments she offers, each straight to her calendar.
    chosen = client.get("/book/?therapist=james-carter").content.decode()
    assert "Treatments with James Carter" in chosen
    assert 'href="/book/massage-30/james-carter/"' in chosen
    assert "/book/massage-90/" not in chosen  # not one of his
    # A name that is not a bookable therapist's shows every treatment, never an error.
    for odd in ("ana-nguyen", "nobody", "x" * 300, "<script>"):
        response = client.get("/book/", {"therapist": odd})
        assert response.status_code == 200
        assert "/book/massage-90/" in response.content.decode()


def test_a_photo_is_responsive_lazy_and_sized_so_nothing_shifts(
    client, django_capture_on_commit_callbacks
):
    maria = Therapist.objects.get(slug="maria-lopez")
    with django_capture_on_commit_callbacks(execute=True):
        maria.photo = gps_jpeg(size=(600, 400))
        maria.photo_alt = "Maria Lopez smiling in the treatment room"
        maria.save()
    maria.refresh_from_db()
    assert sorted(maria.photo_sizes) == ["192", "96"]
    img = next(
        attrs
        for tag, attrs in parse(client.get("/").content.decode()).tags
        if tag == "img" and "therapist-photo" in attrs.get("class", "")
    )
    assert img["alt"] == "Maria Lopez smiling in the treatment room"
    assert (img["width"], img["height"]) == ("96", "96")
    assert img["loading"] == "lazy" and img["sizes"] == "96px"
    candidates = dict(reversed(part.split()) for part in img["srcset"].split(", "))
    assert set(candidates) == {"96w", "192w"}
    for width, url in candidates.items():
        response = client.get(url)
        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == "WEBP" and image.size == (int(width[:-1]),) * 2
            assert not image.getexif()
    # A new photo replaces the sizes; the old ones are deleted.
    from django.core.files.storage import default_storage

    old_sizes = list(maria.photo_sizes.values())
    with django_capture_on_commit_callbacks(execute=True):
        maria.photo = gps_jpeg(size=(300, 300))
        maria.save()
    maria.refresh_from_db()
    assert not any(default_storage.exists(name) for name in old_sizes)
    assert all(default_storage.exists(name) for name in maria.photo_sizes.values())
    candidates = {f"{w}w": default_storage.url(n) for w, n in maria.photo_sizes.items()}
    assert client.get(candidates["96w"]).status_code == 200
    # A therapist no longer bookable: the photo's sizes are no longer public either.
    Therapist.objects.filter(pk=maria.pk).update(is_active=False)
    assert client.get(candidates["96w"]).status_code == 404
    assert client.get(candidates["96w"].replace("-96.webp", "-97.webp")).status_code == 404


def test_a_therapist_without_a_photo_shows_initials_not_a_broken_image(client):
    page = client.get("/").content.decode()
    assert re.search(r'class="therapist-photo therapist-initials" aria-hidden="true">ML<', page)


def test_the_spanish_home_shows_the_offer_in_spanish_with_spanish_links(client):
    page = client.get("/es/").content.decode()
    treatments = section(page, "treatments-title")
    assert "Masaje de 60 minutos" in treatments and 'href="/es/book/massage-60/"' in treatments
    assert "60 minutos · $90" in treatments
    people = section(page, "therapists-title")
    assert "trabaja sobre todo con dolor lumbar" in people
    assert 'href="/es/book/?therapist=maria-lopez"' in people


def test_headings_are_in_order(client):
    for path in ("/", "/es/"):
        levels = parse(client.get(path).content.decode()).headings
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def test_the_home_page_stays_cached_and_a_treatment_change_shows_at_once(client):
    assert client.get("/")["X-Page-Cache"] == "miss"
    assert client.get("/")["X-Page-Cache"] == "hit"
    service = Service.objects.get(slug="massage-60")
    service.price = 99
    service.save()
    response = client.get("/")
    assert response["X-Page-Cache"] == "miss" and "$99" in response.content.decode()


def test_the_home_page_weighs_at_most_25_kb_compressed_without_images(client):
    """The page and everything it loads but images (CSS, favicon), gzipped as served."""
    response = client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    total = len(response.content)
    for tag, attrs in parse(gzip.decompress(response.content).decode()).tags:
        if tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            path = attrs["href"].removeprefix("/static/")
            with open(finders.find(path), "rb") as static:
                total += len(gzip.compress(static.read(), compresslevel=9))
    print(f"home page weight: {total} bytes")
    assert total <= 25 * 1024, f"{total} bytes"
