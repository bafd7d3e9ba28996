"""Booking through the service: the re-check under the lock, the emails, the guard."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking import availability, services
from booking.models import Appointment, TimeOff
from clinic.models import Closure, OutgoingEmail
from tests.conftest import visits_managed_from

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rules(booking_rules, clinic):
    return booking_rules


def book(service, therapist, start, patient, **extra):
    return services.book_appointment(
        service=service, therapist=therapist, start=start, patient=patient, **extra
    )


def test_booking_a_free_time_confirms_it_and_holds_the_buffer(service, therapist, at, patient):
    appointment = book(service, therapist, at(10), patient)
    assert appointment.status == Appointment.Status.CONFIRMED
    assert appointment.ends_at == at(11)
    assert appointment.blocked_until == at(11, 15)
    assert str(appointment.patient_phone) == "+12095550142"


def test_the_confirmation_carries_the_visit_and_an_ics_and_the_clinic_gets_a_notice(
    service, therapist, at, patient
):
    from icalendar import Calendar

    appointment = book(service, therapist, at(10), patient)
    rows = {row.to[0]: row for row in OutgoingEmail.objects.all()}
    confirmation = rows["pat@example.com"]
    assert "Booked" in confirmation.subject
    assert visits_managed_from(confirmation.body_text) == [appointment]
    (attachment,) = confirmation.attachments
    event = Calendar.from_ical(attachment["content"]).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at(10)
    assert str(event["dtstart"].params["TZID"]) == "America/Los_Angeles"
    assert "702 Porter Ave" in str(event["location"])
    notice = next(row for address, row in rows.items() if address != "pat@example.com")
    assert "Pat Example" in notice.body_text


@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_the_confirmation_and_the_notice(
    booking_rules, clinic, service, therapist, at, patient, delivered
):
    # Pass (a): eager Celery into the locmem outbox; pass (b): the real worker's mail files.
    book(service, therapist, at(10), patient)
    subjects = delivered(expected=2)
    assert len(subjects) == 2
    assert any(subject.startswith("Booked:") for subject in subjects)
    assert any(subject.startswith("New booking:") for subject in subjects)


def test_a_second_booking_for_the_same_slot_is_refused(service, therapist, at, patient):
    book(service, therapist, at(10), patient)
    with pytest.raises(services.SlotUnavailable):
        book(service, therapist, at(10), patient)
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("hour", "minute", "why"),
    [
        (9, 30, "ends inside the 10:00 appointment"),
        (10, 30, "starts inside it"),
        (11, 0, "starts inside its 15-minute buffer"),
    ],
)
def test_an_overlapping_booking_is_refused(service, therapist, at, patient, hour, minute, why):
    book(service, therapist, at(10), patient)
    with pytest.raises(services.SlotUnavailable):
        book(service, therapist, at(hour, minute), patient)


def test_the_time_right_after_the_buffer_is_free(service, therapist, at, patient, booking_rules):
    booking_rules.slot_step_minutes = 15
    booking_rules.save()
    book(service, therapist, at(14), patient)
    with pytest.raises(services.SlotUnavailable):
        book(service, therapist, at(15), patient)
    assert book(service, therapist, at(15, 15), patient).starts_at == at(15, 15)


def test_a_cancelled_appointment_frees_its_time(service, therapist, at, patient):
    first = book(service, therapist, at(10), patient)
    Appointment.objects.filter(pk=first.pk).update(status="cancelled", cancelled_at=timezone.now())
    assert book(service, therapist, at(10), patient).pk != first.pk


def test_the_same_submission_twice_books_once(service, therapist, at, patient):
    key = "a" * 32
    first = book(service, therapist, at(10), patient, submission_key=key)
    second = book(service, therapist, at(10), patient, submission_key=key)
    assert first.pk == second.pk
    assert Appointment.objects.count() == 1
    assert OutgoingEmail.objects.count() == 2  # one confirmation, one notice: not four


def test_no_preference_books_whoever_is_free(service, make_therapist, at, patient):
    first, second = make_therapist("A"), make_therapist("B")
    one = book(service, None, at(10), patient)
    two = book(service, None, at(10), patient)
    assert {one.therapist, two.therapist} == {first, second}
    with pytest.raises(services.SlotUnavailable):
        book(service, None, at(10), patient)


@pytest.mark.parametrize(
    "change",
    [
        "therapist_inactive",
        "service_inactive",
        "service_not_offered",
        "time_off",
        "closure",
        "outside_hours",
        "in_the_past",
        "inside_notice",
        "beyond_window",
    ],
)
def test_the_service_rechecks_everything_from_the_database(
    change, service, therapist, at, patient, next_monday, clinic, booking_rules
):
    start = at(10)
    if change == "therapist_inactive":
        therapist.is_active = False
        therapist.save()
    elif change == "service_inactive":
        service.is_active = False
        service.save()
    elif change == "service_not_offered":
        therapist.services.clear()
    elif change == "time_off":
        TimeOff.objects.create(therapist=therapist, starts_at=at(9), ends_at=at(12))
    elif change == "closure":
        Closure.objects.create(clinic=clinic, starts_on=next_monday, ends_on=next_monday)
    elif change == "outside_hours":
        start = at(12)  # the lunch break
    elif change == "in_the_past":
        start = timezone.now() - timedelta(days=1)
    elif change == "inside_notice":
        start = timezone.now() + timedelta(minutes=30)
    elif change == "beyond_window":
        start = at(10, days=7 * 10)
    with pytest.raises(services.SlotUnavailable):
        book(service, therapist, start, patient)
    assert Appointment.objects.count() == 0
    assert OutgoingEmail.objects.count() == 0


def test_loading_a_month_costs_the_same_few_queries_however_many_therapists(
    service, make_therapist, next_monday, at, patient
):
    def count(therapists):
        with CaptureQueriesContext(connection) as queries:
            availability.free_starts(
                service=service,
                therapists=therapists,
                first_day=next_monday,
                last_day=next_monday + timedelta(days=30),
            )
        return len(queries)

    one = [make_therapist()]
    book(service, one[0], at(10), patient)
    few = count(one)
    many = one + [make_therapist() for _ in range(5)]
    assert count(many) == few <= 6  # rules, hours, time off, appointments, closures, holds


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's"
)
def test_the_database_refuses_an_overlap_written_behind_the_services_back(
    service, therapist, at, patient, appointment
):
    clash = Appointment(
        therapist=therapist,
        service=service,
        starts_at=at(10, 30),
        ends_at=at(11, 30),
        blocked_until=at(11, 45),
        patient_name="Someone",
        patient_email="x@example.com",
        patient_phone="+12095550100",
        consented_to_policy_at=timezone.now(),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()
    # A cancelled row may overlap: it holds no time.
    clash.status, clash.cancelled_at = "cancelled", timezone.now()
    clash.save()


def test_the_demo_saturday_the_clinic_advertises_can_be_booked(seeded):
    """The demo's opening hours say Saturday 9–2; a demo therapist works then."""
    from datetime import UTC, date, datetime

    from django.utils import timezone

    from booking.availability import free_starts
    from booking.models import Service
    from clinic.models import OpeningHours

    saturday = date(2026, 6, 6)
    assert saturday.weekday() == OpeningHours.Weekday.SATURDAY
    assert OpeningHours.objects.filter(weekday=OpeningHours.Weekday.SATURDAY).exists()
    service = Service.objects.get(slug="massage-60")
    free = free_starts(
        service=service,
        therapists=list(service.therapists.all()),
        first_day=saturday,
        last_day=saturday,
        now=datetime(2026, 6, 1, 12, tzinfo=UTC),
    )
    starts = sorted(
        s.astimezone(timezone.get_default_timezone()) for found in free.values() for s in found
    )
    assert starts, "no demo therapist works on Saturdays"
    assert starts[0].hour == 9 and starts[-1].hour * 60 + starts[-1].minute <= 13 * 60
