"""The .ics files as another calendar app reads them: parsed with vobject, never with the
icalendar package that writes them, from the email exactly as it goes out (RFC 5546 / 6047)."""

import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest
import vobject
from django.conf import settings
from django.urls import reverse

from booking import services
from booking.calendar import appointment_ics
from booking.models import Appointment
from clinic.mail import _message
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db

PACIFIC = ZoneInfo("America/Los_Angeles")


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist, service):
    service.price = 90
    service.save()


def sent_calendar(row):
    """(the text/calendar part's method= parameter, the file parsed by vobject)."""
    mime = email.message_from_bytes(_message(row).message().as_bytes(), policy=policy.default)
    part = next(p for p in mime.walk() if p.get_content_type() == "text/calendar")
    return part.get_param("method"), vobject.readOne(part.get_content())


def patient_emails(patient):
    return OutgoingEmail.objects.filter(to=[patient.email]).order_by("created_at", "pk")


def history(service, therapist, patient, at, language):
    """Book, move, then cancel one visit in `language`; the three emails the patient got."""
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, language=language
    )
    services.reschedule_appointment(appointment=appointment, start=at(14))
    services.cancel_appointment(appointment=appointment)
    booked, moved, cancelled = patient_emails(patient)
    return appointment, booked, moved, cancelled


@pytest.mark.parametrize("language", ["en", "es"])
def test_booked_moved_and_cancelled_files_name_organizer_and_attendee_with_matching_methods(
    service, therapist, patient, at, clinic, language
):
    appointment, *rows = history(service, therapist, patient, at, language)
    expected = [("REQUEST", 0, "CONFIRMED", at(10)), ("REQUEST", 1, "CONFIRMED", at(14))]
    expected.append(("CANCEL", 2, "CANCELLED", at(14)))
    uids = set()
    for row, (method, sequence, status, start) in zip(rows, expected, strict=True):
        part_method, cal = sent_calendar(row)
        assert part_method == method == cal.method.value
        event = cal.vevent
        uids.add(event.uid.value)
        assert int(event.sequence.value) == sequence
        assert event.status.value == status
        organizer = event.organizer
        clinic_address = clinic.email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
        assert organizer.value.lower() == f"mailto:{clinic_address}"
        assert organizer.params["CN"] == [clinic.name]
        (attendee,) = event.contents["attendee"]
        assert attendee.value.lower() == f"mailto:{patient.email}"
        assert attendee.params["CN"] == [patient.name]
        # The local time, in the clinic's zone, whatever the reader's own zone is.
        assert event.dtstart.value == start and event.dtstart.value.tzinfo is not None
        local = event.dtstart.value.astimezone(PACIFIC)
        assert (local.hour, local.minute) == (start.hour, start.minute)
        assert event.dtend.value - event.dtstart.value == timedelta(minutes=60)
        assert cal.vtimezone.tzid.value == "America/Los_Angeles"
    assert len(uids) == 1


@pytest.mark.parametrize(
    ("language", "minutes", "with_word"),
    [("en", "60 minutes", "with"), ("es", "60 minutos", "con")],
)
def test_the_description_gives_treatment_duration_price_and_therapist_in_the_patients_language(
    service, therapist, patient, at, clinic, language, minutes, with_word
):
    _appointment, *rows = history(service, therapist, patient, at, language)
    for row in rows:
        description = sent_calendar(row)[1].vevent.description.value
        assert service.name in description
        assert minutes in description
        assert "$90" in description
        assert f"{with_word} {therapist.name}" in description
        assert clinic.phone in description


def test_the_downloaded_file_is_a_publish_with_the_organizer_and_no_attendee(
    client, service, therapist, patient, at, clinic
):
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient
    )
    response = client.get(reverse("booking:ics", args=[appointment.public_token]))
    cal = vobject.readOne(response.content.decode())
    assert cal.method.value == "PUBLISH"
    assert cal.vevent.organizer.params["CN"] == [clinic.name]
    assert "attendee" not in cal.vevent.contents
    assert patient.email not in response.content.decode()


def test_a_cancelled_file_names_the_attendee_even_without_a_clinic_email(
    service, therapist, patient, at, clinic
):
    clinic.email = ""
    clinic.save()
    from clinic.services import forget_clinic_profile

    forget_clinic_profile()
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient
    )
    cal = vobject.readOne(appointment_ics(appointment, sequence=1, cancelled=True))
    assert cal.method.value == "CANCEL"
    assert cal.vevent.organizer.value == f"mailto:{parseaddr(settings.DEFAULT_FROM_EMAIL)[1]}"
    assert cal.vevent.attendee.value == f"mailto:{patient.email}"


@pytest.mark.parametrize(
    "local",
    [
        datetime(2027, 1, 12, 10, 0),  # PST
        datetime(2027, 7, 1, 10, 0),  # PDT
        datetime(2027, 3, 14, 3, 30),  # spring-forward day, just after the jump
        datetime(2027, 3, 13, 17, 0),  # the evening before it
        datetime(2027, 11, 7, 9, 0),  # fall-back day, after the change
        datetime(2028, 2, 29, 12, 0),  # a leap day
    ],
    ids=str,
)
def test_an_independent_parser_puts_the_visit_at_the_same_instant_in_every_season(
    service, therapist, patient, local
):
    start = local.replace(tzinfo=PACIFIC)
    visit = Appointment(
        service=service,
        therapist=therapist,
        starts_at=start,
        ends_at=start + timedelta(minutes=60),
        patient_name=patient.name,
        patient_email=patient.email,
    )
    text = appointment_ics(visit)
    cal = vobject.readOne(text)
    assert cal.vevent.dtstart.value.astimezone(UTC) == start.astimezone(UTC)
    assert cal.vevent.dtend.value.astimezone(UTC) == (start + timedelta(hours=1)).astimezone(UTC)
    # Each clock change on its own line: readers that keep one value per line see them all.
    rdates = [line for line in text.splitlines() if line.startswith("RDATE")]
    assert rdates and not any("," in line for line in rdates)
