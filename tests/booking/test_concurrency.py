"""Racing for one time, for real: threads on a barrier, each with its own connection.

In pass (b) this is PostgreSQL with its row locks and the exclusion constraint; in pass (a)
SQLite's IMMEDIATE transactions queue the writers. Either way exactly one wins.
"""

import pytest
from django.db import IntegrityError, connection
from django.test import Client
from django.utils import timezone

from booking import services
from booking.models import Appointment
from tests.booking.test_views import details_url, form_data
from tests.conftest import race

RACERS = 30


def someone(i):
    return services.PatientDetails(
        name=f"Racer {i}", email=f"racer{i}@example.com", phone="+12095550142"
    )


@pytest.fixture
def ready(booking_rules, clinic, therapist, service):
    booking_rules.slot_step_minutes = 15
    booking_rules.save()
    return therapist


@pytest.mark.django_db(transaction=True)
def test_thirty_patients_racing_for_one_slot_get_one_appointment(ready, service, at):
    def attempt(i):
        try:
            return services.book_appointment(
                service=service, therapist=ready, start=at(10), patient=someone(i)
            )
        except services.SlotUnavailable:
            return "taken"

    results = race(attempt, count=RACERS)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count("taken") == RACERS - 1
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_for_overlapping_times_with_different_starts_gives_one_appointment(
    ready, service, at
):
    # 60 minutes plus a 15-minute buffer: any two of these starts overlap.
    starts = [at(9, 30), at(9, 45), at(10), at(10, 15), at(10, 30)]

    def attempt(i):
        try:
            return services.book_appointment(
                service=service, therapist=ready, start=starts[i % len(starts)], patient=someone(i)
            )
        except services.SlotUnavailable:
            return "taken"

    results = race(attempt, count=RACERS)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_no_preference_bookings_fill_each_therapist_once(
    booking_rules, clinic, service, make_therapist, at
):
    therapists = [make_therapist() for _ in range(3)]

    def attempt(i):
        try:
            return services.book_appointment(
                service=service, therapist=None, start=at(10), patient=someone(i)
            )
        except services.SlotUnavailable:
            return "taken"

    results = race(attempt, count=12)
    assert [r for r in results if isinstance(r, Exception)] == []
    booked = Appointment.objects.all()
    assert sorted(a.therapist_id for a in booked) == sorted(t.pk for t in therapists)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's"
)
def test_the_exclusion_constraint_alone_stops_racing_inserts_that_skip_the_service(
    ready, service, at
):
    starts = [at(9, 30), at(9, 45), at(10), at(10, 15), at(10, 30)]

    def attempt(i):
        start = starts[i % len(starts)]
        try:
            return Appointment.objects.create(
                therapist=ready,
                service=service,
                starts_at=start,
                ends_at=start + service.duration,
                blocked_until=start + service.duration + service.buffer,
                patient_name=f"Racer {i}",
                patient_email="racer@example.com",
                patient_phone="+12095550142",
                consented_to_policy_at=timezone.now(),
            )
        except IntegrityError:
            return "refused"

    results = race(attempt, count=RACERS)
    assert results.count("refused") == RACERS - 1
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_staff_racing_through_the_admin_add_form_book_once_and_see_a_form_error(
    ready, service, at, staff_user
):
    start = timezone.localtime(at(10))

    def attempt(i):
        client = Client()
        client.force_login(staff_user)
        return client.post(
            "/admin/booking/appointment/add/",
            {
                "therapist": ready.pk,
                "service": service.pk,
                "starts_at_0": start.date().isoformat(),
                "starts_at_1": start.strftime("%H:%M:%S"),
                "status": "confirmed",
                "patient_name": f"Phone caller {i}",
                "patient_email": f"caller{i}@example.com",
                "patient_phone": "+12095550142",
                "notes": "",
                "language": "en",
                "cancellation_reason": "",
            },
        )

    responses = race(attempt, count=RACERS)
    assert [r for r in responses if isinstance(r, Exception)] == []
    assert sorted(r.status_code for r in responses) == [200] * (RACERS - 1) + [302]
    refused = next(r for r in responses if r.status_code == 200)
    assert "already has Phone caller" in refused.content.decode()
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_identical_submits_racing_all_lead_to_the_one_confirmation(ready, at):
    """A double click (or a phone resending) sends the same form twice within milliseconds:
    every answer is the same 303 to the one confirmation, never "that time was just taken"."""
    url = details_url(ready, at(10))
    data = form_data(Client(), url)

    responses = race(lambda i: Client().post(url, data), count=6)

    assert [r for r in responses if isinstance(r, Exception)] == []
    appointment = Appointment.objects.get()
    confirmation = f"/book/appointment/{appointment.public_token}/"
    assert [(r.status_code, r.get("Location")) for r in responses] == [(303, confirmation)] * 6
    # One patient record too: the copies that lost leave none behind.
    from clinic.models import Patient

    assert list(Patient.objects.all()) == [appointment.patient]


@pytest.mark.django_db(transaction=True)
def test_staff_cancelling_a_visit_as_its_patient_moves_it_never_deadlocks(ready, service, at):
    # The cancel writes a vacancy, which needs the therapist's row; the move holds that row
    # and wants the appointment's. Both take the therapist first, so one simply waits.
    failures = []
    for round_ in range(8):
        visit = services.book_appointment(
            service=service, therapist=ready, start=at(10), patient=someone(round_)
        )

        def attempt(i, visit=visit):
            try:
                if i % 2:
                    return services.cancel_appointment(appointment=visit, by_staff=True)
                return services.reschedule_appointment(appointment=visit, start=at(14))
            except (services.SlotUnavailable, services.TooLateToChange):
                return "refused"

        failures += [r for r in race(attempt, count=6) if isinstance(r, Exception)]
        Appointment.objects.all().delete()
    assert failures == []
