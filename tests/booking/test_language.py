"""Emails in the patient's language: whoever sends them, the patient reads their own."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from icalendar import Calendar

from booking import reminders, services
from booking.models import Appointment
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db

SPANISH_MANAGE = settings.SITE_URL + "/es/book/manage/"


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def book_through_the_site(client, therapist, start, language):
    """Fill in the details step at `start` in `language`, as a patient would."""
    with translation.override(language):
        url = reverse(
            "booking:details", args=["massage-60", therapist.slug, start.date(), start.time()]
        )
    page = client.get(url).content.decode()
    response = client.post(
        url,
        {
            "slot": re.search(r'name="slot" value="([^"]+)"', page).group(1),
            "submission_key": re.search(r'name="submission_key" value="([^"]+)"', page).group(1),
            "name": "Rosa Díaz",
            "email": "rosa@example.com",
            "phone": "(209) 555-0142",
            "notes": "",
            "consent": "on",
            "intake_clot_signs": "no",
            "intake_surgery_or_immobility": "no",
            "intake_blood_thinners": "no",
            "intake_pregnant": "no",
        },
    )
    assert response.status_code == 303, response.content.decode()[:500]
    return Appointment.objects.get(patient_email="rosa@example.com")


def to_patient(**filters):
    return OutgoingEmail.objects.filter(to=["rosa@example.com"], **filters).order_by("created_at")


def in_spanish(text):
    """The catalogue's Spanish for a message, whatever the .po holds today."""
    with translation.override("es"):
        return translation.gettext(text)


def spanish_date(moment, format_string):
    """`moment` as Django's own Spanish names it (always available, unlike our .po)."""
    with translation.override("es"):
        return dateformat.format(timezone.localtime(moment), format_string)


def ics_event(email):
    return Calendar.from_ical(email.attachments[0]["content"]).walk("VEVENT")[0]


def test_a_booking_made_in_spanish_is_remembered_and_confirmed_in_spanish(
    client, therapist, at, clinic
):
    appointment = book_through_the_site(client, therapist, at(10), "es")
    assert appointment.language == "es"
    confirmation = to_patient().get()
    month = spanish_date(at(10), "F")  # "diciembre": the dates were written in Spanish
    assert month in confirmation.body_text and month in confirmation.body_html
    assert spanish_date(at(10), "D") in confirmation.subject
    assert SPANISH_MANAGE in confirmation.body_text and SPANISH_MANAGE in confirmation.body_html
    assert in_spanish("Your appointment is booked.") in confirmation.body_text
    summary = str(ics_event(confirmation)["summary"])
    assert summary == in_spanish("%(service)s at %(clinic)s") % {
        "service": appointment.service.name,
        "clinic": clinic.name,
    }
    # The clinic's own notice stays in English, with English links.
    notice = OutgoingEmail.objects.exclude(to=["rosa@example.com"]).get()
    assert notice.subject.startswith("New booking:") and "Monday" in notice.body_text
    assert "/es/" not in notice.body_text


def test_a_booking_made_in_english_stays_in_english(client, therapist, at):
    appointment = book_through_the_site(client, therapist, at(10), "en")
    assert appointment.language == "en"
    confirmation = to_patient().get()
    assert "Monday" in confirmation.body_text
    assert spanish_date(at(10), "F") not in confirmation.body_text
    assert settings.SITE_URL + "/book/manage/" in confirmation.body_text


def test_the_reminder_from_beat_is_in_the_patients_language(client, therapist, at):
    appointment = book_through_the_site(client, therapist, at(10), "es")
    with translation.override("en"):  # beat and its workers run in English
        assert reminders.send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 1
    reminder = to_patient(idempotency_key__startswith="booking:reminder:").get()
    assert spanish_date(at(10), "D") in reminder.subject
    assert spanish_date(at(10), "F") in reminder.body_text
    assert SPANISH_MANAGE in reminder.body_text and SPANISH_MANAGE in reminder.body_html


def test_a_moved_visit_is_announced_in_spanish_with_a_spanish_calendar(client, therapist, at):
    appointment = book_through_the_site(client, therapist, at(10), "es")
    with translation.override("en"):
        services.reschedule_appointment(appointment=appointment, start=at(14))
    moved = to_patient(idempotency_key__endswith=":patient").get()
    assert spanish_date(at(14), "D") in moved.subject
    assert spanish_date(at(14), "F") in moved.body_text and SPANISH_MANAGE in moved.body_text
    with translation.override("es"):
        how_to_change = translation.gettext("To change or cancel, call %(phone)s.")
    description = str(ics_event(moved)["description"])
    assert how_to_change.split("%(")[0] in description
    assert "minutos" in description and therapist.name in description


def test_staff_cancelling_in_the_english_admin_still_write_to_the_patient_in_spanish(
    client, therapist, at, staff_user
):
    appointment = book_through_the_site(client, therapist, at(10), "es")
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:booking_appointment_changelist"),
        {
            "action": "cancel_selected",
            "_selected_action": [appointment.pk],
            "confirm_cancel": "yes",
            "reason": "Your therapist is ill today.",
        },
    )
    assert response.status_code == 302
    cancelled = to_patient(idempotency_key__endswith=":patient").get()
    assert spanish_date(at(10), "D") in cancelled.subject
    assert spanish_date(at(10), "F") in cancelled.body_text
    assert settings.SITE_URL + "/es/book/" in cancelled.body_text
    assert str(ics_event(cancelled)["status"]) == "CANCELLED"
    clinic_copy = OutgoingEmail.objects.get(idempotency_key__endswith=":clinic")
    assert clinic_copy.subject.startswith("Cancelled:") and "Monday" in clinic_copy.body_text
