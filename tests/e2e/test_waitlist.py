"""A patient on a phone joins the waitlist from a full day, a cancellation frees a time, the
offer arrives by email, and they book it through the offer link: in English and in Spanish."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from booking import links
from booking.models import Appointment, Hold, TimeOff, WaitlistEntry
from booking.services import PatientDetails, book_appointment
from clinic.models import OutgoingEmail
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
WORDS = {
    "en": {
        "prefix": "",
        "join": "Nothing suits? Join the waitlist",
        "morning": "Morning (before noon)",
        "name": "Your name",
        "submit": "Join the waitlist",
        "thanks": "Thank you",
        "offer": "A time is free for you",
        "consent": "I have read and agree to the cancellation policy.",
        "book": "Book this appointment",
    },
    "es": {
        "prefix": "/es",
        "join": "¿No le viene bien nada? Apúntese a la lista de espera",
        "morning": "Mañana (antes del mediodía)",
        "name": "Su nombre",
        "submit": "Apuntarse a la lista de espera",
        "thanks": "Gracias",
        "offer": "Hay una hora libre para usted",
        "consent": "He leído y acepto la política de cancelación.",
        "book": "Reservar esta cita",
    },
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_join_from_a_full_day_then_claim_the_freed_time(
    page,
    check_page,
    live_server,
    booking_rules,
    clinic,
    service,
    therapist,
    at,
    language,
    celery_worker,
):
    words = WORDS[language]
    # A full Monday: away all day but 10:00-11:15, which another patient has booked.
    TimeOff.objects.create(therapist=therapist, starts_at=at(8), ends_at=at(10))
    TimeOff.objects.create(therapist=therapist, starts_at=at(11, 15), ends_at=at(18))
    other = book_appointment(
        service=service,
        therapist=therapist,
        start=at(10),
        patient=PatientDetails(name="Sam Other", email="sam@example.com", phone="+12095550142"),
    )
    day = at(10).date()

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{words['prefix']}/book/massage-60/{therapist.slug}/{day}/")
    check_page(f"waitlist-{language}-1-full-day")
    page.set_viewport_size(PHONE)
    page.get_by_role("link", name=words["join"]).click()
    page.wait_for_url(re.compile(r"/waitlist/\?day="))
    check_page(f"waitlist-{language}-2-join")
    # The full day is ticked on its own, under "only the days I tick".
    expect(page.locator('input[name="when"][value="days"]')).to_be_checked()
    expect(page.locator(f'input[name="days"][value="{day}"]')).to_be_checked()
    expect(page.locator('input[name="days"]:checked')).to_have_count(1)

    page.set_viewport_size(PHONE)
    page.get_by_label(words["morning"]).check()
    page.get_by_label(words["name"]).fill("Ana Waiting")
    page.locator("#id_email").fill("ana@example.com")
    page.locator("#id_phone").fill("209 555 0143")
    page.get_by_role("button", name=words["submit"]).click()
    page.wait_for_url("**/waitlist/joined/")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["thanks"])
    check_page(f"waitlist-{language}-3-joined")
    entry = WaitlistEntry.objects.get()
    assert (entry.first_day, entry.last_day, entry.language) == (day, day, language)
    assert entry.days == [day.isoformat()]

    # The other patient cancels through their manage link, freeing 10:00.
    page.goto(links.manage_url(other).replace(settings.SITE_URL, live_server.url) + "cancel/")
    page.get_by_role("button", name="Yes, cancel my appointment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This appointment is cancelled")

    offer = wait_for(
        lambda: OutgoingEmail.objects.filter(
            to=["ana@example.com"], subject__startswith=words["offer"]
        ).first()
    )
    assert offer, "no offer email"
    link = re.search(r"https?://\S+/waitlist/offer/\S+/", offer.body_text).group(0)
    assert f"{words['prefix']}/book/waitlist/offer/" in link
    page.set_viewport_size(PHONE)
    page.goto(link.replace(settings.SITE_URL, live_server.url))
    page.wait_for_url(re.compile(r"\?offer="))
    expect(page.get_by_label(words["name"])).to_have_value("Ana Waiting")
    check_page(f"waitlist-{language}-4-offer-details")

    page.set_viewport_size(PHONE)
    for question in (
        "intake_clot_signs",
        "intake_surgery_or_immobility",
        "intake_blood_thinners",
        "intake_pregnant",
    ):
        page.locator(f'input[name="{question}"][value="no"]').check()
    page.get_by_label(words["consent"]).check()
    page.get_by_role("button", name=words["book"]).click()
    page.wait_for_url("**/book/appointment/*/")
    check_page(f"waitlist-{language}-5-booked")

    booked = Appointment.objects.active().get()
    assert (booked.patient_email, booked.starts_at, booked.language) == (
        "ana@example.com",
        at(10),
        language,
    )
    assert Hold.objects.get().state == "claimed"


@pytest.mark.parametrize("language", ["en", "es"])
def test_days_past_the_booking_window_are_refused_keeping_the_ticks(
    page, check_page, live_server, booking_rules, clinic, service, therapist, at, language
):
    words = WORDS[language]
    day = at(10).date()
    page.set_viewport_size(PHONE)
    page.goto(
        f"{live_server.url}{words['prefix']}/book/massage-60/{therapist.slug}/waitlist/?day={day}"
    )
    # A day the page no longer offers (the window moved on while the form was open).
    page.evaluate(
        """() => { const box = document.querySelector('input[name="days"]');
        box.value = '2999-01-04'; box.checked = true; }"""
    )
    page.get_by_label(words["name"]).fill("Ana Waiting")
    page.locator("#id_email").fill("ana@example.com")
    page.locator("#id_phone").fill("209 555 0143")
    page.expected_4xx.add(page.url)  # the refusal is a 400, as it should be
    page.get_by_role("button", name=words["submit"]).click()

    expect(page.locator("#id_days_error")).to_be_visible()
    expect(page.locator('input[name="days"][value="2999-01-04"]')).to_be_checked()
    expect(page.locator("#id_name")).to_have_value("Ana Waiting")
    check_page(f"waitlist-{language}-6-bad-days")
    assert not WaitlistEntry.objects.exists()
