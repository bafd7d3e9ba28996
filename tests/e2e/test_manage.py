"""A patient follows the manage link in the confirmation email, moves the visit, then cancels."""

import re

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from booking.models import Appointment
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db(transaction=True)


def test_following_the_email_link_to_move_then_cancel(
    page, check_page, live_server, seeded, booking_rules, appointment
):
    email = OutgoingEmail.objects.get(to=["pat@example.com"])
    link = re.search(r"\S+/book/manage/\S+", email.body_text).group(0)
    page.goto(link.replace(settings.SITE_URL, live_server.url))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your appointment")
    check_page("manage")

    page.get_by_role("link", name="Choose a new time").click()
    page.wait_for_url("**/move/")
    check_page("manage-move-day")
    # Next month: far enough ahead that the new time is before the cut-off, whatever today is.
    page.get_by_role("link", name="Next month").click()
    page.locator("a.day-free").first.click()
    page.wait_for_url(re.compile(r"/move/\d{4}-\d{2}-\d{2}/$"))
    check_page("manage-move-time")
    page.locator("a.time-button").last.click()
    check_page("manage-move-confirm")
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_text("Your appointment has moved.")).to_be_visible()

    moved = Appointment.objects.get()
    assert moved.starts_at != appointment.starts_at and moved.sequence == 1
    when = timezone.localtime(moved.starts_at)
    expect(page.locator(".booking-summary")).to_contain_text(f"{when:%B} {when.day}")

    # Cancelling asks first, on a page of its own; nothing changes until the second press.
    page.get_by_role("link", name="Cancel this appointment").click()
    page.wait_for_url("**/cancel/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your appointment?")
    expect(page.locator(".booking-summary")).to_contain_text(f"{when:%B} {when.day}")
    check_page("manage-cancel-confirm")
    assert Appointment.objects.get().status == "confirmed"
    page.get_by_label("Reason (optional)").fill("Away that week")
    page.get_by_role("button", name="Yes, cancel my appointment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This appointment is cancelled")
    check_page("manage-cancelled")
    cancelled = Appointment.objects.get()
    assert cancelled.status == "cancelled" and cancelled.cancellation_reason == "Away that week"
    subjects = list(
        OutgoingEmail.objects.filter(to=["pat@example.com"]).values_list("subject", flat=True)
    )
    assert any(s.startswith("Moved to") for s in subjects)
    assert any(s.startswith("Cancelled:") for s in subjects)
