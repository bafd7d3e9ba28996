"""What the patient sees of the visit on each page: treatment, duration and price on every
step and after it, honest short notice, and what to know before coming."""

import html
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import dateformat, translation

from booking import links, services
from booking.models import Service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _priced(booking_rules, clinic, therapist, service):
    service.price = 90
    service.save()


def text_of(page):
    """The page's words as a reader meets them: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def details_url(therapist, start, language="en"):
    with translation.override(language):
        return reverse(
            "booking:details", args=["massage-60", therapist.slug, start.date(), start.time()]
        )


def summary(html):
    """The text of the page's booking summary (the <dl> of the chosen visit)."""
    found = re.search(r'<dl class="booking-summary[^"]*">(.*?)</dl>', html, re.S)
    assert found, "no booking summary on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_every_booking_step_after_the_first_shows_treatment_duration_and_price(
    client, therapist, at
):
    day = at(10).date()
    steps = [
        reverse("booking:therapist", args=["massage-60"]),
        reverse("booking:day", args=["massage-60", therapist.slug]),
        reverse("booking:time", args=["massage-60", therapist.slug, day]),
        details_url(therapist, at(10)),
    ]
    for url in steps:
        response = client.get(url)
        assert response.status_code == 200, url
        text = summary(response.content.decode())
        assert "60-minute massage" in text and "60 minutes" in text and "$90" in text, url


def test_the_first_step_lists_each_treatment_with_its_price(client, service):
    Service.objects.filter(pk=service.pk).update(price="92.50")
    page = client.get(reverse("booking:start")).content.decode()
    assert "$92.50" in page


def test_the_confirmation_and_manage_pages_show_duration_and_price(client, therapist, at, patient):
    appointment = services.book_appointment(
        service=therapist.services.get(), therapist=therapist, start=at(10), patient=patient
    )
    pages = [
        reverse("booking:confirmation", args=[appointment.public_token]),
        reverse("booking:manage", args=[links.manage_token(appointment)]),
    ]
    for url in pages:
        text = summary(client.get(url).content.decode())
        assert "60 minutes" in text and "$90" in text, url


def test_in_spanish_the_summary_gives_minutos_and_the_same_price(client, therapist, at):
    text = summary(client.get(details_url(therapist, at(10), "es")).content.decode())
    assert "60 minutos" in text and "$90" in text


@pytest.mark.parametrize(("language", "words"), [("en", "cannot be moved"), ("es", "no se podrá")])
def test_the_details_step_warns_that_a_time_inside_the_cut_off_cannot_be_changed_online(
    client, therapist, at, clinic, language, words
):
    with time_machine.travel(at(7), tick=False):  # 10:00 is 3 hours away, the cut-off is 24
        page = client.get(details_url(therapist, at(10), language)).content.decode()
    assert words in page
    assert clinic.phone in text_of(page)


def test_the_details_step_says_nothing_of_the_cut_off_for_a_time_well_ahead(client, therapist, at):
    with time_machine.travel(at(7), tick=False):
        page = client.get(details_url(therapist, at(10, days=2))).content.decode()
    assert "short-notice" not in page and "cannot be moved" not in page


def test_the_confirmation_of_a_short_notice_visit_says_call_us_instead_of_move_or_cancel(
    client, therapist, at, clinic, patient
):
    appointment = services.book_appointment(
        service=therapist.services.get(),
        therapist=therapist,
        start=at(10),
        patient=patient,
        now=at(7),
    )
    url = reverse("booking:confirmation", args=[appointment.public_token])
    with time_machine.travel(at(7), tick=False):
        page = client.get(url).content.decode()
    assert "to change it, call us on" in text_of(page)
    assert clinic.phone_href in page
    assert "Move or cancel this appointment" not in page
    page_ahead = client.get(url).content.decode()  # today, a week or more before the visit
    assert "Move or cancel this appointment" in page_ahead
    assert "to change it, call us" not in text_of(page_ahead)


@pytest.mark.parametrize(
    ("language", "heading", "field"),
    [("en", "Before your visit", "before_visit"), ("es", "Antes de su visita", "before_visit_es")],
)
def test_the_confirmation_page_says_what_to_know_before_the_visit(
    client, therapist, at, clinic, patient, language, heading, field
):
    clinic.refresh_from_db()
    appointment = services.book_appointment(
        service=therapist.services.get(), therapist=therapist, start=at(10), patient=patient
    )
    with translation.override(language):
        url = reverse("booking:confirmation", args=[appointment.public_token])
    text = text_of(client.get(url).content.decode())
    assert heading in text
    first_paragraph = getattr(clinic, field).split("\n")[0]
    assert first_paragraph and first_paragraph in text


def test_spanish_pages_write_the_weekday_in_lower_case_mid_sentence(client, therapist, at):
    day = at(10).date()
    with translation.override("es"):
        url = reverse("booking:time", args=["massage-60", therapist.slug, day])
        weekday = dateformat.format(at(10), "l")
    heading = re.search(r"<h1>(.*?)</h1>", client.get(url).content.decode(), re.S).group(1)
    assert weekday in heading and weekday == weekday.lower()
