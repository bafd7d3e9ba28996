"""On a phone, in English and Spanish: the home page shows the treatments and therapists and
leads into booking with one chosen; the month says in words which days are fully booked or
closed; the soonest free time opens its details step; a neck massage asks no calf questions."""

import re

import pytest
from playwright.sync_api import expect

from booking.models import Service, Therapist

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}

WORDS = {
    "en": {
        "prefix": "",
        "treatments": "Treatments",
        "therapists": "Our therapists",
        "book_with": "Book with James Carter",
        "neck": "30-minute massage",
        "soonest": "Soonest free time:",
        "closed": "closed",
        "details": "Your details",
        "questions": "A few health questions",
        "price": "60 minutes · $90",
    },
    "es": {
        "prefix": "/es",
        "treatments": "Tratamientos",
        "therapists": "Nuestros terapeutas",
        "book_with": "Reservar con James Carter",
        "neck": "Masaje de 30 minutos",
        "soonest": "Primer horario disponible:",
        "closed": "cerrado",
        "details": "Sus datos",
        "questions": "Algunas preguntas de salud",
        "price": "60 minutos · $90",
    },
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_from_the_home_page_to_a_therapists_soonest_time_on_a_phone(
    page, check_page, live_server, seeded, language
):
    words = WORDS[language]
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + words["prefix"] + "/")
    treatments = page.get_by_role("region", name=words["treatments"])
    expect(treatments).to_contain_text(words["price"])
    assert treatments.locator("a.choice").count() == Service.objects.bookable().count()
    therapists = page.get_by_role("region", name=words["therapists"])
    assert therapists.locator("a.choice").count() == Therapist.objects.bookable().count()
    # Photos (here, initials until staff add them) never shift the page: fixed boxes.
    box = therapists.locator(".therapist-photo").first.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (96, 96)
    check_page(f"home-offer-{language}")

    page.set_viewport_size(PHONE)
    therapists.get_by_role("link", name=re.compile(words["book_with"])).click()
    page.wait_for_url(re.compile(r"/book/\?therapist=james-carter$"))
    check_page(f"home-offer-{language}-therapist-treatments")

    page.set_viewport_size(PHONE)
    page.get_by_role("link", name=re.compile(words["neck"])).click()
    page.wait_for_url(re.compile(r"/book/massage-30/james-carter/$"))
    # Next month: whole weeks ahead whatever today is, so its Sundays are not past.
    page.locator(".month-nav").get_by_role("link").last.click()
    page.wait_for_url(re.compile(r"\?month=\d{4}-\d{2}$"))
    grid = page.locator("table.month-grid")
    # Sundays: nobody works, and the month says so in words.
    expect(grid.locator(".day-closed .day-note").first).to_have_text(words["closed"])
    check_page(f"home-offer-{language}-month")

    page.set_viewport_size(PHONE)
    soonest = page.locator("p", has_text=words["soonest"]).get_by_role("link")
    soonest.click()
    page.wait_for_url(re.compile(r"/book/massage-30/james-carter/\d{4}-\d{2}-\d{2}/\d{4}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(words["details"])
    # A 30-minute neck massage: the demo asks none of the calf and clot questions.
    expect(page.get_by_text(words["questions"])).to_have_count(0)
    assert page.locator('input[name^="intake_"]').count() == 0
    check_page(f"home-offer-{language}-details-no-questions")
