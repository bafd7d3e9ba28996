"""The schedule's version: every write to a table that decides free times replaces it, however
the write is made, in the write's own transaction; nothing else does.

Transactional tests (real commits): on PostgreSQL the triggers run at COMMIT.
"""

from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from articles.models import Topic
from booking.models import (
    Appointment,
    BookingRules,
    Hold,
    Room,
    RoomClosure,
    TimeOff,
    WaitlistEntry,
)
from booking.schedule_version import SCHEDULE_MODELS, read_token
from clinic.models import ClinicProfile, Closure

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_of_each(appointment, therapist, service, at):
    """At least one row in every table that decides free times."""
    Closure.objects.create(
        clinic=ClinicProfile.objects.get(), starts_on=at(0).date(), ends_on=at(0).date()
    )
    TimeOff.objects.create(therapist=therapist, starts_at=at(9, days=1), ends_at=at(10, days=1))
    entry = WaitlistEntry.objects.create(
        service=service,
        therapist=therapist,
        first_day=at(0).date(),
        last_day=at(0).date(),
        name="Waiting",
        email="w@example.com",
        phone="+12095550143",
        morning=True,
    )
    room = Room.objects.create(name="Room 1")
    RoomClosure.objects.create(room=room, starts_at=at(9, days=4), ends_at=at(10, days=4))
    Hold.objects.create(
        entry=entry,
        therapist=therapist,
        service=service,
        starts_at=at(11, days=2),
        blocked_until=at(12, days=2),
        expires_at=timezone.now() + timedelta(hours=1),
    )


def test_a_write_that_bypasses_python_to_any_schedule_table_replaces_the_version(one_of_each):
    for label in SCHEDULE_MODELS:
        model = apps.get_model(label)
        assert model.objects.exists(), f"one_of_each must make a {label} for this test"
        before = read_token()
        assert before is not None
        with connection.cursor() as cursor:
            cursor.execute(f'UPDATE "{model._meta.db_table}" SET id = id')  # noqa: S608
        assert read_token() != before, f"a raw UPDATE of {label} left the schedule's version"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
def test_emptying_any_schedule_table_with_truncate_replaces_the_version(one_of_each):
    for label in SCHEDULE_MODELS:
        before = read_token()
        with connection.cursor() as cursor:
            cursor.execute(f'TRUNCATE "{apps.get_model(label)._meta.db_table}" CASCADE')
        assert read_token() != before, f"a TRUNCATE of {label} left the schedule's version"


def test_queryset_updates_deletes_and_bulk_creates_replace_the_version(one_of_each, therapist, at):
    before = read_token()
    Appointment.objects.update(cancellation_reason="Moved by staff")
    after_update = read_token()
    assert after_update != before
    TimeOff.objects.all().delete()
    after_delete = read_token()
    assert after_delete != after_update
    TimeOff.objects.bulk_create(
        [TimeOff(therapist=therapist, starts_at=at(9, days=3), ends_at=at(10, days=3))]
    )
    assert read_token() != after_delete


def test_a_write_rolled_back_leaves_the_version(one_of_each):
    before = read_token()
    with pytest.raises(RuntimeError), transaction.atomic():
        BookingRules.objects.update(max_days_ahead=30)
        raise RuntimeError
    assert read_token() == before


def test_writes_elsewhere_leave_the_version(one_of_each):
    before = read_token()
    Topic.objects.create(name="Shoulders", slug="shoulders")
    assert read_token() == before


def test_inside_a_transaction_nothing_is_read_from_the_cache(one_of_each):
    # It may have written what the version does not show yet (PostgreSQL bumps at COMMIT).
    with transaction.atomic():
        assert read_token() is None
    assert read_token() is not None
