"""One guarantee for a therapist's time: appointments and waitlist holds alike.

On PostgreSQL one exclusion constraint (booking_occupancy, kept by triggers) refuses any two
of them that meet, whoever writes the rows; a hold that ran out is free time at once.
"""

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from booking import services
from booking.availability import Availability
from booking.models import Appointment, Hold, Vacancy, WaitlistEntry
from booking.services import PatientDetails, book_appointment

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's"
)


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def someone(n):
    return PatientDetails(name=f"Patient {n}", email=f"p{n}@example.com", phone="+12095550142")


def waiting(service, day, n=1):
    return WaitlistEntry.objects.create(
        service=service,
        first_day=day,
        last_day=day,
        morning=True,
        name=f"Waiting {n}",
        email=f"w{n}@example.com",
        joined_at=timezone.now() - timedelta(days=1),
    )


def raw_hold(entry, therapist, service, start, *, expires_at=None, **fields):
    return Hold.objects.create(
        entry=entry,
        therapist=therapist,
        service=service,
        starts_at=start,
        blocked_until=start + service.duration + service.buffer,
        expires_at=expires_at or timezone.now() + timedelta(minutes=30),
        **fields,
    )


def raw_appointment(therapist, service, start, **fields):
    return Appointment.objects.create(
        therapist=therapist,
        service=service,
        starts_at=start,
        ends_at=start + service.duration,
        blocked_until=start + service.duration + service.buffer,
        patient_name="Written by hand",
        patient_email="shell@example.com",
        patient_phone="+12095550142",
        consented_to_policy_at=timezone.now(),
        **fields,
    )


@postgresql_only
def test_the_database_refuses_an_appointment_written_over_an_active_hold(service, therapist, at):
    raw_hold(waiting(service, at(10).date()), therapist, service, at(10))

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_appointment(therapist, service, at(10, 30))
    assert Appointment.objects.count() == 0


@postgresql_only
def test_the_database_refuses_a_hold_written_over_an_appointment(service, therapist, at):
    raw_appointment(therapist, service, at(10))

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_hold(waiting(service, at(10).date()), therapist, service, at(10, 45))
    assert Hold.objects.count() == 0


@postgresql_only
def test_a_cancelled_visit_or_an_ended_hold_no_longer_blocks_in_the_database(
    service, therapist, at
):
    entry = waiting(service, at(10).date())
    visit = raw_appointment(therapist, service, at(10))
    Appointment.objects.filter(pk=visit.pk).update(status="cancelled", cancelled_at=timezone.now())
    hold = raw_hold(entry, therapist, service, at(10))
    Hold.objects.filter(pk=hold.pk).update(state="released")

    raw_appointment(therapist, service, at(10))  # the database lets it in

    assert Appointment.objects.active().count() == 1


@postgresql_only
def test_moving_a_visit_by_hand_onto_a_held_time_is_refused(service, therapist, at):
    visit = raw_appointment(therapist, service, at(14))
    raw_hold(waiting(service, at(10).date()), therapist, service, at(10))

    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.filter(pk=visit.pk).update(
            starts_at=at(10), ends_at=at(11), blocked_until=at(11, 15)
        )
    visit.refresh_from_db()
    assert visit.starts_at == at(14)


def test_a_hold_that_ran_out_is_offered_and_booked_before_the_beat_ends_it(service, therapist, at):
    entry = waiting(service, at(10).date())
    offered_at = at(10) - timedelta(days=3)
    with time_machine.travel(offered_at, tick=False):
        hold = raw_hold(
            entry, therapist, service, at(10), expires_at=offered_at + timedelta(minutes=30)
        )
        assert at(10) not in Availability(service=service, therapists=[therapist]).times_on(
            at(10).date()
        )

    with time_machine.travel(offered_at + timedelta(minutes=31), tick=False):
        assert at(10) in Availability(service=service, therapists=[therapist]).times_on(
            at(10).date()
        )
        visit = book_appointment(
            service=service, therapist=therapist, start=at(10), patient=someone(2)
        )

    hold.refresh_from_db()
    assert visit.starts_at == at(10) and hold.state == "expired"
    # The rest of the held time, if any, goes to the waitlist as the beat would send it.
    assert Vacancy.objects.filter(therapist=therapist, starts_at=at(10)).exists()


def test_a_hold_still_running_keeps_its_time_at_the_last_second(service, therapist, at):
    entry = waiting(service, at(10).date())
    offered_at = at(10) - timedelta(days=3)
    with time_machine.travel(offered_at, tick=False):
        raw_hold(entry, therapist, service, at(10), expires_at=offered_at + timedelta(minutes=30))
    almost = offered_at + timedelta(minutes=29, seconds=59)
    with time_machine.travel(almost, tick=False), pytest.raises(services.SlotUnavailable):
        book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(2))
    assert Hold.objects.active().count() == 1
