"""What a patient sees when their write waited too long for a lock: the two "busy" answers.

The lock itself is tested for real on PostgreSQL (tests/clinic/test_locking.py); here the
service raises Busy as the lock helper would, so the pages can be looked at on any database.
"""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from booking import services
from booking.models import Appointment
from clinic.locking import Busy
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db(transaction=True)


def busy(*args, **kwargs):
    raise Busy


def test_a_busy_booking_keeps_the_form_and_a_busy_cancel_says_try_again(
    page, check_page, live_server, seeded, booking_rules, appointment, monkeypatch
):
    page.goto(f"{live_server.url}/book/massage-60/any/")
    page.get_by_role("link", name="Next month").click()
    page.locator("a.day-free").first.click()
    page.locator("a.time-button").first.click()
    page.get_by_label("Your name").fill("Sam Busy")
    page.locator("#id_email").fill("sam@example.com")
    page.get_by_label("Phone").fill("(209) 555-0199")
    for answer in page.locator('input[type="radio"][value="no"]').all():
        answer.check()
    page.get_by_label("I have read and agree to the cancellation policy.").check()
    monkeypatch.setattr(services, "book_appointment", busy)
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_text("Busy, please try again.")).to_be_visible()
    expect(page.get_by_label("Your name")).to_have_value("Sam Busy")
    check_page("booking-busy")

    email = OutgoingEmail.objects.filter(to=["pat@example.com"]).first()
    link = re.search(r"\S+/book/manage/\S+", email.body_text).group(0)
    page.goto(link.replace(settings.SITE_URL, live_server.url))
    page.get_by_role("link", name="Cancel this appointment").click()
    page.wait_for_url("**/cancel/")
    monkeypatch.setattr(services, "cancel_appointment", busy)
    page.get_by_role("button", name="Yes, cancel my appointment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Busy, please try again")
    check_page("busy")
    assert Appointment.objects.get().is_active
    # Both answers are 503s on purpose; the browser logs each, and nothing else may be there.
    assert len([e for e in page.console_errors if "status of 503" in e]) == 2
    page.console_errors[:] = [e for e in page.console_errors if "status of 503" not in e]
