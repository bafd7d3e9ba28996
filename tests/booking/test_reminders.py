"""Reminders: one email about 24 hours before each confirmed visit, never two, never intake."""

from dataclasses import replace
from datetime import UTC, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking import services
from booking.models import Appointment
from booking.reminders import remind_appointment, send_due_reminders
from booking.tasks import send_due_reminders_task
from clinic.mail import queue_email
from clinic.models import OutgoingEmail
from tests.conftest import race, visits_managed_from, wait_for

DAY = timedelta(hours=24)


@pytest.fixture(autouse=True)
def _rules(booking_rules, clinic):
    return booking_rules


def reminders():
    return OutgoingEmail.objects.filter(idempotency_key__startswith="booking:reminder:")


def key(appointment, start=None):
    """The outbox key of the reminder for `start` (the database's UTC form of it)."""
    start = (start or appointment.starts_at).astimezone(UTC)
    return f"booking:reminder:{appointment.pk}:{start.isoformat()}"


def make_appointment(therapist, service, *, starts_at, scheduled_at, **fields):
    """A confirmed appointment written directly: the reminder reads only the row."""
    return Appointment.objects.create(
        therapist=therapist,
        service=service,
        starts_at=starts_at,
        ends_at=starts_at + service.duration,
        blocked_until=starts_at + service.duration + service.buffer,
        patient_name="Pat Example",
        patient_email="pat@example.com",
        patient_phone="+12095550142",
        consented_to_policy_at=scheduled_at,
        created_at=scheduled_at,
        scheduled_at=scheduled_at,
        **fields,
    )


@pytest.mark.django_db
class TestWhoIsDue:
    def test_a_due_appointment_gets_one_reminder_with_the_visit_and_its_manage_link(
        self, appointment
    ):
        assert send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 1
        (email,) = reminders()
        assert email.to == ["pat@example.com"]
        assert email.subject.startswith("Reminder")
        assert email.category == OutgoingEmail.Category.TRANSACTIONAL
        assert email.idempotency_key == key(appointment)
        assert visits_managed_from(email.body_text) == [appointment]
        assert visits_managed_from(email.body_html) == [appointment]
        for part in (email.body_text, email.body_html):
            assert "60-minute massage" in part
            assert "Maria Lopez" in part
            assert "10:00 AM" in part
        appointment.refresh_from_db()
        assert appointment.reminded_for == appointment.starts_at

    def test_running_it_twice_sends_one(self, appointment):
        now = appointment.starts_at - timedelta(hours=23)
        assert send_due_reminders(now=now) == 1
        assert send_due_reminders(now=now) == 0
        assert send_due_reminders(now=now + timedelta(hours=1)) == 0
        assert reminders().count() == 1

    def test_an_appointment_booked_less_than_24_hours_ahead_gets_none(
        self, service, therapist, at, patient
    ):
        start = at(10)
        services.book_appointment(
            service=service,
            therapist=therapist,
            start=start,
            patient=patient,
            now=start - timedelta(hours=20),
        )
        for hours_before in (19, 5, 1):
            assert send_due_reminders(now=start - timedelta(hours=hours_before)) == 0
        assert reminders().count() == 0

    def test_a_cancelled_appointment_gets_none(self, appointment):
        services.cancel_appointment(appointment=appointment, by_staff=True)
        assert send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 0
        assert reminders().count() == 0

    def test_a_far_away_appointment_waits_until_24_hours_before_its_start(self, appointment):
        start = appointment.starts_at
        assert send_due_reminders() == 0  # today: a week ahead
        assert send_due_reminders(now=start - DAY - timedelta(minutes=1)) == 0
        assert reminders().count() == 0
        assert send_due_reminders(now=start - DAY) == 1  # the edge is included
        assert reminders().count() == 1

    def test_one_that_has_started_gets_none(self, appointment):
        assert send_due_reminders(now=appointment.starts_at) == 0
        assert send_due_reminders(now=appointment.starts_at + timedelta(minutes=5)) == 0
        assert reminders().count() == 0

    def test_a_rescheduled_appointment_is_reminded_again_for_its_new_time(
        self, appointment, booking_rules, at
    ):
        booking_rules.cancel_cutoff_hours = 2
        booking_rules.save()
        first_now = appointment.starts_at - timedelta(hours=23)
        assert send_due_reminders(now=first_now) == 1

        moved = services.reschedule_appointment(
            appointment=appointment, start=at(10, days=2), now=first_now
        )
        assert moved.reminded_for is None
        assert send_due_reminders(now=first_now) == 0  # the new time is days away
        assert send_due_reminders(now=moved.starts_at - timedelta(hours=23)) == 1
        keys = sorted(reminders().values_list("idempotency_key", flat=True))
        assert keys == sorted(key(appointment, start) for start in (at(10), moved.starts_at))
        assert "Wednesday" in reminders().get(idempotency_key=keys[-1]).body_text

    def test_one_moved_to_less_than_24_hours_ahead_gets_none_for_its_new_time(
        self, appointment, booking_rules, at
    ):
        booking_rules.cancel_cutoff_hours = 2
        booking_rules.save()
        now = at(11, days=-1)  # Sunday 11:00; the new time is Monday 09:00, 22 hours on
        moved = services.reschedule_appointment(appointment=appointment, start=at(9), now=now)
        for later in (now, moved.starts_at - timedelta(hours=12)):
            assert send_due_reminders(now=later) == 0
        assert reminders().count() == 0

    def test_an_unknown_id_is_false_not_an_error(self, appointment):
        now = appointment.starts_at - timedelta(hours=23)
        assert remind_appointment(appointment_id=appointment.pk + 1000, now=now) is False
        assert remind_appointment(appointment_id=appointment.pk, now=now) is True
        assert remind_appointment(appointment_id=appointment.pk, now=now) is False
        assert reminders().count() == 1

    def test_the_reminder_says_nothing_of_the_intake_answers(self, service, therapist, at, patient):
        intake = {name: True for name in Appointment.INTAKE_FIELDS}
        with_answers = replace(patient, intake=intake)
        appointment = services.book_appointment(
            service=service, therapist=therapist, start=at(10), patient=with_answers
        )
        assert appointment.needs_clearance
        assert send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 1
        (email,) = reminders()
        words = ["intake", "pregnan", "blood thinner", "clot", "surgery", "immobil", "swelling"]
        words += [
            str(Appointment._meta.get_field(name).verbose_name)
            for name in Appointment.INTAKE_FIELDS
        ]
        for part in (email.subject, email.body_text, email.body_html):
            assert [word for word in words if word.lower() in part.lower()] == []

    def test_after_the_cut_off_the_link_only_shows_the_visit_and_the_phone_is_given(
        self, appointment, clinic
    ):
        # The fixture's cut-off is 24 hours, so at 23 hours the patient can no longer move it.
        send_due_reminders(now=appointment.starts_at - timedelta(hours=23))
        email = reminders().get()
        assert "To see your appointment:" in email.body_text
        assert f"to change it, call us on {clinic.phone}" in email.body_text
        assert "move or cancel" not in email.body_text

    def test_the_due_appointments_are_read_in_one_query_however_many(
        self, service, make_therapist, at
    ):
        now = at(10) - timedelta(hours=23)
        for hour in (8, 9, 10, 11):  # within 24 hours of Sunday 11:00
            make_appointment(
                make_therapist(), service, starts_at=at(hour), scheduled_at=now - 7 * DAY
            )
        with CaptureQueriesContext(connection) as queries:
            assert send_due_reminders(now=now) == 4
        reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
        assert len([sql for sql in reads if 'FROM "booking_appointment"' in sql]) == 1
        assert [sql for sql in reads if 'FROM "booking_service"' in sql] == []
        assert [sql for sql in reads if 'FROM "booking_therapist"' in sql] == []


@pytest.mark.django_db(transaction=True)
def test_racing_runs_send_one_reminder(booking_rules, clinic, service, therapist, at):
    now = at(10) - timedelta(hours=23)
    make_appointment(therapist, service, starts_at=at(10), scheduled_at=now - 7 * DAY)

    results = race(lambda _: send_due_reminders(now=now), count=8)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(results) == [0] * 7 + [1]
    assert reminders().count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_calls_for_one_appointment_send_one_reminder(
    booking_rules, clinic, service, therapist, at
):
    now = at(10) - timedelta(hours=23)
    appointment = make_appointment(therapist, service, starts_at=at(10), scheduled_at=now - 7 * DAY)

    results = race(lambda _: remind_appointment(appointment_id=appointment.pk, now=now), count=8)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count(True) == 1
    assert reminders().count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_task_run_twice_and_concurrently_delivers_one_reminder_each(
    booking_rules, clinic, service, make_therapist, delivered
):
    # Pass (b)'s worker runs with the real clock: these are due now, for real.
    now = timezone.now()
    due = [
        make_appointment(
            make_therapist(),
            service,
            starts_at=now + timedelta(hours=hours),
            scheduled_at=now - 2 * DAY,
        )
        for hours in (20, 21)
    ]
    make_appointment(  # booked for tomorrow only an hour ago: no reminder
        make_therapist(),
        service,
        starts_at=now + timedelta(hours=20),
        scheduled_at=now - timedelta(hours=1),
    )

    send_due_reminders_task.delay()
    send_due_reminders_task.delay()
    # .result, not .get(): an eager result needs no waiting, and get() inside a worker thread
    # can be mistaken by Celery for a task waiting on a subtask.
    results = race(lambda _: send_due_reminders_task.apply().result, count=2)
    assert [r for r in results if isinstance(r, Exception)] == []
    with transaction.atomic():
        queue_email(to="pat@example.com", subject="Sentinel", body_text="Last in line.")

    # The sentinel's send was queued after both task runs; once everything queued has been
    # sent, a second reminder would have been delivered too.
    delivered(expected=len(due) + 1)
    assert wait_for(lambda: not OutgoingEmail.objects.exclude(state="sent").exists(), timeout=60)
    subjects = delivered(expected=len(due) + 1)
    assert len([s for s in subjects if s.startswith("Reminder")]) == len(due)
    assert sorted(reminders().values_list("idempotency_key", flat=True)) == sorted(
        key(a) for a in due
    )
    assert all(
        a.starts_at == a.reminded_for
        for a in Appointment.objects.filter(pk__in=[a.pk for a in due])
    )
