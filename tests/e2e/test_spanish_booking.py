"""A Spanish-speaking patient on a phone books in Spanish and gets the confirmation in Spanish."""

import re

import pytest
from playwright.sync_api import expect

from booking.models import Appointment
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


def test_booking_in_spanish_from_the_spanish_home_page(page, check_page, live_server, seeded):
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/es/")
    assert page.locator("html").get_attribute("lang") == "es"
    page.get_by_role("link", name="Reservar cita").first.click()
    page.wait_for_url("**/es/book/")
    check_page("es-booking-1-service")

    page.set_viewport_size(PHONE)
    page.get_by_role("link", name=re.compile("Masaje de 60 minutos")).click()
    page.wait_for_url(re.compile(r"/es/book/[a-z0-9-]+/$"))
    page.get_by_role("link", name=re.compile("Cualquiera")).click()
    page.wait_for_url(re.compile(r"/es/book/[a-z0-9-]+/any/$"))
    check_page("es-booking-3-day")

    page.set_viewport_size(PHONE)
    page.locator("a.day-free").first.click()
    page.locator("a.time-button").first.click()
    page.wait_for_url(re.compile(r"/es/book/.+/\d{4}/$"))
    check_page("es-booking-5-details")

    page.set_viewport_size(PHONE)
    page.get_by_label("Su nombre").fill("María Pérez")
    page.locator("#id_email").fill("maria@example.com")
    page.locator("#id_phone").fill("209 555 0142")
    for question in (
        "intake_clot_signs",
        "intake_surgery_or_immobility",
        "intake_blood_thinners",
        "intake_pregnant",
    ):
        page.locator(f'input[name="{question}"][value="no"]').check()
    page.get_by_label("He leído y acepto la política de cancelación.").check()
    page.get_by_role("button", name="Reservar esta cita").click()
    page.wait_for_url("**/es/book/appointment/*/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Su cita está reservada")
    check_page("es-booking-6-confirmation")

    appointment = Appointment.objects.get()
    assert appointment.language == "es"
    email = OutgoingEmail.objects.get(to=["maria@example.com"])
    assert "Su cita está reservada." in email.body_text
    assert "/es/book/manage/" in email.body_text
