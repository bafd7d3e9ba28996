"""Print how long finding free booking times takes: the engine alone, then end to end.

    bench/booking.py                  (the engine, then end to end on SQLite in a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench bench/booking.py

`make bench` runs it both ways. On PostgreSQL the database is created if it is missing and
migrated; if the server cannot be reached, the end-to-end line says it was skipped.
Figures, not a test: nothing here passes or fails.
"""

import random
import statistics
import time as clock
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import _django  # noqa: E402  (bench/ is on sys.path when a script runs)

_django.setup(TIME_ZONE="America/Los_Angeles")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from booking import availability, slots  # noqa: E402

REPEAT = 20
TZ = ZoneInfo("America/Los_Angeles")
WEEKDAYS = range(5)
SEED = 20240601


def timed(run):
    """(median ms, best ms, last result) of REPEAT calls of `run`, after one warm-up call."""
    result = run()
    times = []
    for _ in range(REPEAT):
        start = clock.perf_counter()
        result = run()
        times.append((clock.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), result


def days_from(first_day, count):
    return [first_day + timedelta(days=n) for n in range(count)]


def engine_case():
    """10 therapists over 60 days, 2,000 visits already booked; the engine alone, no database.

    A fixed `now` (a Monday morning; the window crosses the March clock change) keeps the
    count of free starts the same from run to run.
    """
    now = datetime(2026, 2, 16, 8, 0, tzinfo=TZ)
    first_day = now.date() + timedelta(days=1)
    days = days_from(first_day, 60)
    hours = [(time(9), time(12, 30)), (time(13, 30), time(18))]
    visit, buffer = timedelta(minutes=60), timedelta(minutes=15)

    # Every place a visit and its buffer fit back to back, then 2,000 of them at random:
    # existing appointments never overlap, as the database guarantees.
    places = []
    for therapist_id in range(1, 11):
        for day in days:
            if day.weekday() not in WEEKDAYS:
                continue
            for opens, closes in hours:
                start = datetime.combine(day, opens, tzinfo=TZ)
                while start + visit <= datetime.combine(day, closes, tzinfo=TZ):
                    places.append((therapist_id, start))
                    start += visit + buffer
    busy = {therapist_id: [] for therapist_id in range(1, 11)}
    for therapist_id, start in random.Random(SEED).sample(places, 2000):
        busy[therapist_id].append((start, start + visit + buffer))
    hours = [
        slots.TherapistHours(pk, {weekday: hours for weekday in WEEKDAYS}, busy[pk]) for pk in busy
    ]
    rules = slots.Rules(
        step=timedelta(minutes=15), min_notice=timedelta(hours=2), max_days_ahead=60
    )

    def run():
        return slots.free_starts(
            therapists=hours,
            closures=[],
            duration=visit,
            buffer=buffer,
            rules=rules,
            first_day=days[0],
            last_day=days[-1],
            tz=TZ,
            now=now,
        )

    median, best, free = timed(run)
    return median, best, sum(len(starts) for starts in free.values())


def seed_end_to_end(days):
    """One therapist, 09:00–17:00 on weekdays, 8 of the 16 half-hours of each working day
    booked. Replaces what an earlier run left, so a kept PostgreSQL database can be reused."""
    from booking.models import Appointment, BookingRules, Service, Therapist, WorkingHours

    Appointment.objects.filter(therapist__slug="bench-booking").delete()
    Therapist.objects.filter(slug="bench-booking").delete()
    Service.objects.filter(slug="bench-booking").delete()
    BookingRules.objects.update_or_create(
        pk=BookingRules.SINGLETON_PK,
        defaults={
            "slot_step_minutes": 30,
            "min_notice_minutes": 120,
            "max_days_ahead": 60,
            "cancellation_policy": "Cancel 24 hours ahead.",
        },
    )
    service = Service.objects.create(
        name="Bench visit", slug="bench-booking", duration_minutes=30, buffer_minutes=0
    )
    therapist = Therapist.objects.create(name="Bench Therapist", slug="bench-booking")
    therapist.services.add(service)
    WorkingHours.objects.bulk_create(
        WorkingHours(therapist=therapist, weekday=weekday, opens=time(9), closes=time(17))
        for weekday in WEEKDAYS
    )
    pick = random.Random(SEED)
    now = timezone.now()
    half_hour = timedelta(minutes=30)
    appointments = []
    for day in days:
        if day.weekday() not in WEEKDAYS:
            continue
        opens = datetime.combine(day, time(9), tzinfo=TZ)
        for n in sorted(pick.sample(range(16), 8)):
            start = opens + n * half_hour
            appointments.append(
                Appointment(
                    therapist=therapist,
                    service=service,
                    starts_at=start,
                    ends_at=start + half_hour,
                    blocked_until=start + half_hour,
                    patient_name=f"Bench Patient {len(appointments)}",
                    patient_email=f"patient{len(appointments)}@example.com",
                    patient_phone="+12095550142",
                    consented_to_policy_at=now,
                )
            )
    Appointment.objects.bulk_create(appointments)
    return service, therapist


def end_to_end_case():
    """booking.availability.free_starts for one therapist over 30 days, reading the database."""
    call_command("migrate", verbosity=0)
    # From tomorrow, so the two hours' notice cuts nothing.
    first_day = timezone.localdate() + timedelta(days=1)
    days = days_from(first_day, 30)
    service, therapist = seed_end_to_end(days)

    def run():
        return availability.free_starts(
            service=service, therapists=[therapist], first_day=days[0], last_day=days[-1]
        )

    with CaptureQueriesContext(connection) as queries:
        run()
    median, best, free = timed(run)
    return median, best, sum(len(starts) for starts in free.values()), len(queries)


def main():
    database = connection.vendor
    print(f"free booking times, America/Los_Angeles; median and best of {REPEAT} runs")
    print(
        f"{'case':<56} {'database':<10} {'free starts':>11} {'queries':>7} "
        f"{'median ms':>9} {'best ms':>8}  target"
    )

    median, best, free = engine_case()
    case = "engine: 10 therapists x 60 days, 2,000 booked, 15' step"
    print(f"{case:<56} {'none':<10} {free:>11} {'-':>7} {median:>9.1f} {best:>8.1f}  under 50 ms")

    case = "end to end: 1 therapist x 30 days, 8 booked a day"
    if not _django.database_reachable():
        host = connection.settings_dict.get("HOST") or "localhost"
        print(f"{case:<56} {database:<10} skipped: {database} at {host} is not reachable")
        return
    median, best, free, count = end_to_end_case()
    print(
        f"{case:<56} {database:<10} {free:>11} {count:>7} {median:>9.1f} {best:>8.1f}  under 20 ms"
    )


if __name__ == "__main__":
    main()
