"""Articles lead to bookings: the article's call to book carries through to the appointment."""

import re
from html import unescape

import pytest

from articles.models import Article
from booking.models import Appointment
from tests.booking.test_views import form_data

pytestmark = pytest.mark.django_db

CALF = "/articles/tight-calf-muscles-low-back-pain/"


def links(response, pattern):
    return [
        unescape(h)
        for h in re.findall(r'href="([^"]*)"', response.content.decode())
        if re.search(pattern, unescape(h))
    ]


def test_the_calf_article_opens_booking_with_its_treatment_and_the_appointment_remembers_it(
    client, seeded
):
    article = Article.objects.get(slug="tight-calf-muscles-low-back-pain")
    (cta,) = links(client.get(CALF), r"^/book/.*\?from=")
    assert cta == "/book/calf-low-back-trigger-point/?from=tight-calf-muscles-low-back-pain"
    # Each step carries ?from= on to the next: no cookie, no session.
    (any_therapist,) = links(client.get(cta), r"/any/\?from=")
    day = links(client.get(any_therapist), r"/any/\d{4}-\d{2}-\d{2}/\?from=")[-1]
    time_url = links(client.get(day), r"/\d{4}/\?from=")[0]
    response = client.post(time_url, form_data(client, time_url))
    assert response.status_code == 303, response.content.decode()[:500]
    appointment = Appointment.objects.get()
    assert appointment.source_article == article
    assert appointment.service.slug == "calf-low-back-trigger-point"


def test_an_article_without_a_recommendation_opens_the_first_step_with_its_slug(client, seeded):
    Article.objects.update(recommended_service=None)
    (cta,) = links(client.get(CALF), r"^/book/.*\?from=")
    assert cta == "/book/?from=tight-calf-muscles-low-back-pain"
    services = links(client.get(cta), r"^/book/[a-z0-9-]+/\?from=tight-calf")
    assert len(services) == 5  # four treatments for one, one for two


@pytest.mark.parametrize("bad", ["no-such-article", "x" * 300, "<script>", ""])
def test_an_unknown_or_hostile_source_is_ignored_not_an_error(client, seeded, bad):
    response = client.get("/book/calf-low-back-trigger-point/", {"from": bad})
    assert response.status_code == 200
    assert "from=" not in _without_language_switch(response)


def test_a_draft_article_is_not_recorded_as_a_source(client, seeded):
    Article.objects.update(status=Article.Status.DRAFT)
    response = client.get(
        "/book/calf-low-back-trigger-point/", {"from": "tight-calf-muscles-low-back-pain"}
    )
    assert "from=" not in _without_language_switch(response)


def _without_language_switch(response):
    """The page but its link to the other language, which keeps the address as it was typed."""
    return re.sub(r'<a [^>]*class="[^"]*language-switch[^>]*>', "", response.content.decode())
