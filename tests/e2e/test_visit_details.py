"""A patient on a phone sees the price at every step, is told plainly when a time is too close
to change online, and reads what to know before the visit, in English and in Spanish."""

import re

import pytest
from playwright.sync_api import expect

from booking.models import BookingRules

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}

WORDS = {
    "en": {
        "prefix": "",
        "minutes": "60 minutes",
        "name": "Your name",
        "consent": "I have read and agree to the cancellation policy.",
        "book": "Book this appointment",
        "booked": "You are booked",
        "before": "Before your visit",
        "short_notice": "cannot be moved or cancelled online",
        "call_us": "to change it, call us on",
        "manage": "Move or cancel this appointment",
    },
    "es": {
        "prefix": "/es",
        "minutes": "60 minutos",
        "name": "Su nombre",
        "consent": "He leído y acepto la política de cancelación.",
        "book": "Reservar esta cita",
        "booked": "Su cita está reservada",
        "before": "Antes de su visita",
        "short_notice": "no se podrá cambiar ni cancelar en línea",
        "call_us": "para cambiarla, llámenos al",
        "manage": "Cambiar o cancelar esta cita",
    },
}


def summary(page):
    return page.locator("dl.booking-summary").first


@pytest.mark.parametrize("short_notice", [False, True], ids=["ahead", "short-notice"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_price_on_every_step_short_notice_and_before_your_visit(
    page, check_page, live_server, seeded, language, short_notice
):
    words = WORDS[language]
    name = f"{language}-visit-{'short' if short_notice else 'ahead'}"
    rules = BookingRules.current()
    # A cut-off longer than the booking window puts every free time inside it; 0 puts none.
    rules.cancel_cutoff_hours = 24 * (rules.max_days_ahead + 2) if short_notice else 0
    rules.save()

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}{words['prefix']}/book/")
    treatment = page.locator('a.choice[href*="/massage-60/"]')
    expect(treatment).to_contain_text("$90")
    expect(treatment).to_contain_text(words["minutes"])
    treatment.click()

    page.wait_for_url(re.compile(r"/book/massage-60/$"))
    expect(summary(page)).to_contain_text("$90")
    expect(summary(page)).to_contain_text(words["minutes"])
    page.locator('a.choice[href*="/any/"]').click()

    page.wait_for_url(re.compile(r"/book/massage-60/any/$"))
    expect(summary(page)).to_contain_text("$90")
    check_page(f"{name}-3-day")
    page.set_viewport_size(PHONE)
    page.locator("a.day-free").first.click()

    page.wait_for_url(re.compile(r"/any/\d{4}-\d{2}-\d{2}/$"))
    expect(summary(page)).to_contain_text("$90")
    if language == "es":
        heading = page.get_by_role("heading", level=1).inner_text()
        weekday = heading.split()[2]  # "Horarios del martes 8 de diciembre"
        assert weekday == weekday.lower(), heading
    page.locator("a.time-button").first.click()

    page.wait_for_url(re.compile(r"/\d{4}/$"))
    expect(summary(page)).to_contain_text("$90")
    expect(summary(page)).to_contain_text(words["minutes"])
    note = page.locator(".short-notice")
    if short_notice:
        expect(note).to_be_visible()
        expect(note).to_contain_text(words["short_notice"])
        expect(note.get_by_role("link")).to_have_attribute("href", re.compile(r"^tel:\+1"))
    else:
        expect(note).to_have_count(0)
    check_page(f"{name}-5-details")

    page.set_viewport_size(PHONE)
    page.get_by_label(words["name"]).fill("Pat Example")
    page.locator("#id_email").fill("pat@example.com")
    page.locator("#id_phone").fill("209 555 0142")
    for radio in page.locator('input[type="radio"][value="no"]').all():
        radio.check()
    page.get_by_label(words["consent"]).check()
    page.get_by_role("button", name=words["book"]).click()

    page.wait_for_url("**/book/appointment/*/")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["booked"])
    visit = summary(page)
    expect(visit).to_contain_text("$90")
    expect(visit).to_contain_text(words["minutes"])
    before = page.locator("section.before-visit")
    expect(before.get_by_role("heading", name=words["before"])).to_be_visible()
    expect(before).to_contain_text("5" if language == "en" else "5 a 10")
    if short_notice:
        expect(page.get_by_text(words["call_us"])).to_be_visible()
        expect(page.get_by_role("link", name=words["manage"])).to_have_count(0)
    else:
        expect(page.get_by_role("link", name=words["manage"])).to_be_visible()
    check_page(f"{name}-6-confirmation")
