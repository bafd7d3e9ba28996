"""A patient on a phone books from the home page through every step and keeps the .ics."""

import re

import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from booking.models import Appointment

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


def test_booking_on_a_phone_from_home_to_confirmation_and_calendar_file(
    page, check_page, live_server, seeded, delivered
):
    taps = 0

    def tap(locator):
        nonlocal taps
        page.set_viewport_size(PHONE)
        locator.click()
        taps += 1

    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/")
    tap(page.get_by_role("link", name="Book now"))
    page.wait_for_url("**/book/")
    check_page("booking-1-service")

    tap(page.get_by_role("link", name=re.compile("Calf and low-back trigger-point session")))
    page.wait_for_url("**/book/calf-low-back-trigger-point/")
    check_page("booking-2-therapist")

    tap(page.get_by_role("link", name=re.compile("No preference")))
    page.wait_for_url("**/book/calf-low-back-trigger-point/any/")
    check_page("booking-3-day")

    tap(page.locator("a.day-free").first)
    page.wait_for_url(re.compile(r"/any/\d{4}-\d{2}-\d{2}/$"))
    expect(page.get_by_text(re.compile(r"local time \((PST|PDT)\)"))).to_be_visible()
    check_page("booking-4-time")

    first_time = page.locator("a.time-button").first
    chosen = first_time.inner_text()
    tap(first_time)
    page.wait_for_url(re.compile(r"/\d{4}/$"))
    assert taps <= 7
    check_page("booking-5-details")

    page.set_viewport_size(PHONE)
    page.expected_4xx.add(page.url)
    # A first try with a mistake: the message shows and nothing typed is lost.
    page.get_by_label("Your name").fill("Pat Example")
    page.locator("#id_email").fill("pat@example")
    page.get_by_label("Phone").fill("209 555 0142")
    page.get_by_label("Anything we should know?").fill("Left calf feels tight.")
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_text("Enter a valid email address.")).to_be_visible()
    expect(page.get_by_label("Your name")).to_have_value("Pat Example")
    expect(page.get_by_label("Anything we should know?")).to_have_value("Left calf feels tight.")
    check_page("booking-5-details-errors")

    page.set_viewport_size(PHONE)
    page.locator("#id_email").fill("pat@example.com")
    for question in ("intake_clot_signs", "intake_surgery_or_immobility", "intake_pregnant"):
        page.locator(f'input[name="{question}"][value="no"]').check()
    page.get_by_role("group", name=re.compile("blood thinners")).get_by_label("Yes").check()
    page.get_by_label("I have read and agree to the cancellation policy.").check()
    page.get_by_role("button", name="Book this appointment").click()
    page.wait_for_url("**/book/appointment/*/")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are booked")
    expect(page.get_by_text(chosen, exact=False).first).to_be_visible()
    expect(page.get_by_text("(209) 555-0142")).to_be_visible()
    # A "yes" to a health question: plain advice to see a doctor first, the booking stands.
    expect(page.get_by_text("please speak to your doctor before your visit")).to_be_visible()
    check_page("booking-6-confirmation")

    appointment = Appointment.objects.get()
    assert appointment.service.slug == "calf-low-back-trigger-point"
    assert appointment.needs_clearance and appointment.intake_blood_thinners
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    download = download_info.value
    assert download.suggested_filename == "appointment.ics"
    with open(download.path(), "rb") as ics:
        event = Calendar.from_ical(ics.read()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == appointment.starts_at
    assert "702 Porter Ave" in str(event["location"])
    assert any(subject.startswith("Booked:") for subject in delivered(expected=2))
