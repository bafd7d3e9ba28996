"""The lock helper: a lock outside a transaction is refused, and (on PostgreSQL) a row held
elsewhere for too long becomes "busy, please try again", never a hung page or a 500."""

import re
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from booking import services
from booking.models import Appointment, Therapist
from clinic.locking import Busy, NotInTransaction, lock, require_transaction
from clinic.mail import write_bulk_emails
from tests.booking.test_views import details_url, form_data

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and lock_timeout are PostgreSQL's"
)
# How long the other transaction holds the row at the most: far beyond the lock timeout,
# so a page that answers at all answered because the timeout ended its wait.
HOLD_AT_MOST = 60


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_is_refused(therapist):
    with pytest.raises(NotInTransaction):
        lock(Therapist.objects.filter(pk=therapist.pk))
    with transaction.atomic():
        assert lock(Therapist.objects.filter(pk=therapist.pk)) == [therapist]


@pytest.mark.django_db(transaction=True)
def test_writes_that_must_share_their_callers_transaction_refuse_to_run_alone(
    appointment, therapist
):
    with pytest.raises(NotInTransaction):
        require_transaction()
    with pytest.raises(NotInTransaction):
        services.validate_not_overlapping(appointment=appointment)
    with pytest.raises(NotInTransaction):
        write_bulk_emails([{"to": "a@example.com", "subject": "S", "body_text": "B"}])


@contextmanager
def held(model, pk):
    """Another connection holds `model` row `pk` FOR UPDATE until the block ends."""
    ready, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(model.objects.filter(pk=pk).select_for_update())
                ready.set()
                release.wait(HOLD_AT_MOST)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(30), "the other transaction never took its lock"
    try:
        yield
    finally:
        release.set()
        holder.join()


@pytest.fixture
def short_timeout(settings):
    settings.DATABASE_LOCK_TIMEOUT = 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_booking_behind_a_held_lock_is_busy_within_the_timeout(
    short_timeout, booking_rules, clinic, therapist, service, at, patient
):
    started = time.monotonic()
    with held(Therapist, therapist.pk), pytest.raises(Busy):
        services.book_appointment(
            service=service, therapist=therapist, start=at(10), patient=patient
        )
    assert time.monotonic() - started < HOLD_AT_MOST
    assert not Appointment.objects.exists()
    # Once the other transaction is over, the same booking goes through.
    services.book_appointment(service=service, therapist=therapist, start=at(10), patient=patient)
    assert Appointment.objects.count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_patient_is_told_busy_with_everything_typed_kept(
    short_timeout, client, booking_rules, clinic, therapist, service, at
):
    url = details_url(therapist, at(10))
    data = form_data(client, url, name="Pat Busy", notes="Right shoulder")
    with held(Therapist, therapist.pk):
        response = client.post(url, data)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Busy, please try again" in page
    assert 'value="Pat Busy"' in page and "Right shoulder" in page
    assert re.search(rf'name="submission_key" value="{data["submission_key"]}"', page)
    assert not Appointment.objects.exists()
    # Sending the same form again, once the lock is free, books it.
    assert client.post(url, data).status_code == 303
    assert Appointment.objects.get().patient_name == "Pat Busy"


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_patient_cancelling_behind_a_held_lock_is_told_busy(short_timeout, client, appointment):
    from booking.links import manage_token

    token = manage_token(appointment)
    with held(Appointment, appointment.pk):
        response = client.post(f"/book/manage/{token}/cancel/", {"reason": ""})
    assert response.status_code == 503
    assert "Busy, please try again" in response.content.decode()
    assert response["Retry-After"] == "5"
    appointment.refresh_from_db()
    assert appointment.is_active


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_staff_are_told_busy_in_the_admin(short_timeout, client, staff_user, appointment):
    client.force_login(staff_user)
    with held(Appointment, appointment.pk):
        response = client.post(
            "/admin/booking/appointment/",
            {
                "action": "cancel_selected",
                "_selected_action": [appointment.pk],
                "confirm_cancel": "yes",
                "reason": "Therapist unwell",
            },
        )
    assert response.status_code == 503
    assert "Busy, please try again" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.is_active
