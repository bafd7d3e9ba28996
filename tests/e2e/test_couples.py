"""Two people book side by side on a phone, in English and in Spanish: one booking, two
therapists, one couples room, each person's own health answers; axe on every page."""

import re

import pytest
from playwright.sync_api import expect

from booking.models import Appointment, Room
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
QUESTIONS = (
    "intake_clot_signs",
    "intake_surgery_or_immobility",
    "intake_blood_thinners",
    "intake_pregnant",
)
WORDS = {
    "en": {
        "prefix": "",
        "treatment": "Side-by-side massage for two",
        "any_two": "Any two therapists",
        "consent": "I have read and agree to the cancellation policy.",
        "book": "Book this appointment",
        "booked": "You are booked",
        "and": " and ",
    },
    "es": {
        "prefix": "/es",
        "treatment": "Masaje para dos, uno al lado del otro",
        "any_two": "Dos terapeutas cualesquiera",
        "consent": "He leído y acepto la política de cancelación.",
        "book": "Reservar esta cita",
        "booked": "Su cita está reservada",
        "and": " y ",
    },
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_couple_books_side_by_side_on_a_phone(page, check_page, live_server, seeded, language):
    words = WORDS[language]
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{words['prefix']}/book/")
    page.get_by_role("link", name=re.compile(words["treatment"])).click()
    page.wait_for_url(re.compile(r"/book/side-by-side-massage/$"))
    check_page(f"{language}-couples-2-therapists")

    page.set_viewport_size(PHONE)
    page.get_by_role("link", name=re.compile(words["any_two"])).click()
    page.wait_for_url(re.compile(r"/book/side-by-side-massage/any/$"))
    check_page(f"{language}-couples-3-day")

    page.set_viewport_size(PHONE)
    page.locator("a.day-free").first.click()
    page.wait_for_url(re.compile(r"/any/\d{4}-\d{2}-\d{2}/$"))
    check_page(f"{language}-couples-4-time")

    page.set_viewport_size(PHONE)
    page.locator("a.time-button").first.click()
    page.wait_for_url(re.compile(r"/\d{4}/$"))
    check_page(f"{language}-couples-5-details")

    page.set_viewport_size(PHONE)
    page.locator("#id_name").fill("Pat Example")
    page.locator("#id_email").fill("pat@example.com")
    page.locator("#id_phone").fill("209 555 0142")
    page.locator("#id_companion_name").fill("Sam Friend")
    for question in QUESTIONS:
        page.locator(f'input[name="{question}"][value="no"]').check()
        page.locator(f'input[name="companion_{question}"][value="no"]').check()
    page.locator('input[name="companion_intake_pregnant"][value="yes"]').check()
    page.get_by_label(words["consent"]).check()
    page.get_by_role("button", name=words["book"]).click()
    page.wait_for_url(re.compile(r"/book/appointment/[^/]+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(words["booked"])
    expect(page.get_by_text("Sam Friend")).to_be_visible()
    check_page(f"{language}-couples-6-confirmation")

    first, second = Appointment.objects.order_by("pk")
    assert first.pair == second.pair and first.therapist != second.therapist
    assert first.room == second.room == Room.objects.get(kind="couples")
    assert (second.patient_name, second.intake_pregnant, first.intake_pregnant) == (
        "Sam Friend",
        True,
        False,
    )
    assert first.language == language
    (email,) = OutgoingEmail.objects.filter(to=["pat@example.com"])
    therapists = f"{first.therapist.name}{words['and']}{second.therapist.name}"
    assert therapists in email.body_text and therapists in email.body_html
