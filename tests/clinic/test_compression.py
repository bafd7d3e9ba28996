"""Smaller pages: indentation trimmed everywhere, gzip only where no secret is on the page."""

import gzip
import re

import pytest
from django.http import HttpResponse
from django.urls import reverse

from clinic.compression import CompressionMiddleware, trim_html

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = [
    "/",
    "/articles/",
    "/articles/topics/low-back-pain/",
    "/articles/tight-calf-muscles-low-back-pain/",
    "/articles/feed/rss/",
    "/sitemap.xml",
    "/newsletter/",
]


@pytest.fixture(autouse=True)
def _seeded(seeded):
    return seeded


@pytest.mark.parametrize("path", [*PUBLIC_PAGES, "/book/", "/book/massage-60/any/"])
def test_public_pages_are_sent_compressed(client, path):
    response = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response["Content-Encoding"] == "gzip"
    assert b"<" in gzip.decompress(response.content)[:200]


def test_pages_with_a_csrf_token_or_a_patients_details_are_never_compressed(
    client, appointment, still_clock
):
    from booking.links import manage_token

    day_page = client.get("/book/massage-60/any/").content.decode()
    day_path = re.search(r'href="(/book/massage-60/any/\d{4}-\d{2}-\d{2}/)"', day_page).group(1)
    times = client.get(day_path).content.decode()
    details = re.search(rf'href="({day_path}\d{{4}}/)"', times).group(1)
    private_pages = [
        details,
        reverse("booking:confirmation", args=[appointment.public_token]),
        reverse("booking:manage", args=[manage_token(appointment)]),
    ]
    for path in private_pages:
        response = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert response.status_code == 200, path
        assert "Content-Encoding" not in response, path
    assert b"csrfmiddlewaretoken" in client.get(details, HTTP_ACCEPT_ENCODING="gzip").content


def test_a_page_that_cannot_be_compressed_is_sent_without_its_indentation(client, appointment):
    page = client.get(reverse("booking:confirmation", args=[appointment.public_token])).content
    assert b"\n  <" not in page and b"\n\n" not in page
    assert b"Pat Example" in page


def test_the_admin_is_sent_as_written(admin_client):
    assert b"\n  " in admin_client.get("/admin/").content


def test_white_space_inside_pre_and_textarea_is_kept():
    html = (
        b"<div>\n    <p>Hello</p>\n\n    <pre>line 1\n    indented</pre>\n"
        b'  <textarea name="notes">Left calf\n\n   tight</textarea>\n</div>'
    )
    assert trim_html(html) == (
        b"<div>\n<p>Hello</p>\n<pre>line 1\n    indented</pre>\n"
        b'<textarea name="notes">Left calf\n\n   tight</textarea>\n</div>'
    )


def test_the_trimmed_length_is_the_length_sent(rf):
    def view(request):
        response = HttpResponse("<p>\n      hello\n</p>" * 50)
        response["Cache-Control"] = "private, no-store"
        response["Content-Length"] = str(len(response.content))
        return response

    response = CompressionMiddleware(view)(rf.get("/"))
    assert int(response["Content-Length"]) == len(response.content) < 50 * 21
