"""The availability engine, without a database: data in, free start times out."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.slots import (
    Rules,
    TherapistHours,
    free_starts,
    group_by_day,
    is_valid_day,
    merge_therapists,
    nearest,
)

TZ = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)
WEEKDAYS_9_TO_5 = {day: [(time(9), time(17))] for day in range(5)}
# Monday 2027-03-01, a week with no clock change; "now" is the Sunday before at noon.
MONDAY = date(2027, 3, 1)
SUNDAY_NOON = datetime(2027, 2, 28, 12, tzinfo=TZ)


def local(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def starts(
    *,
    weekly=None,
    busy=(),
    closures=(),
    duration=HOUR,
    buffer=timedelta(0),
    rules=None,
    first_day=MONDAY,
    last_day=MONDAY,
    now=SUNDAY_NOON,
):
    """Free starts of one therapist, as local wall-clock datetimes."""
    free = free_starts(
        therapists=[TherapistHours(1, WEEKDAYS_9_TO_5 if weekly is None else weekly, list(busy))],
        closures=list(closures),
        duration=duration,
        buffer=buffer,
        rules=rules or Rules(step=HOUR, min_notice=timedelta(hours=2), max_days_ahead=60),
        first_day=first_day,
        last_day=last_day,
        tz=TZ,
        now=now,
    )
    return [start.astimezone(TZ) for start in free[1]]


def hours(found):
    return [(s.hour, s.minute) for s in found]


def test_a_free_day_offers_every_step_that_fits_inside_the_working_hours():
    assert hours(starts()) == [(h, 0) for h in range(9, 17)]


def test_a_longer_service_ends_before_closing():
    assert hours(starts(duration=timedelta(minutes=90)))[-1] == (15, 0)


def test_a_lunch_break_splits_the_day():
    weekly = {0: [(time(9), time(12)), (time(13), time(17))]}
    assert (12, 0) not in hours(starts(weekly=weekly))
    assert (11, 0) in hours(starts(weekly=weekly))
    assert (13, 0) in hours(starts(weekly=weekly))


def test_a_day_without_working_hours_has_no_times():
    assert starts(first_day=date(2027, 3, 6), last_day=date(2027, 3, 7)) == []  # weekend


def test_an_existing_appointment_and_its_buffer_block_the_time():
    # An appointment 10:00–11:00 with a 30-minute buffer holds 10:00–11:30.
    busy = [(local(MONDAY, 10), local(MONDAY, 11, 30))]
    found = hours(starts(busy=busy, rules=Rules(step=timedelta(minutes=30), min_notice=HOUR)))
    assert (9, 30) not in found  # would run into the 10:00 appointment
    assert (10, 0) not in found and (11, 0) not in found
    assert (9, 0) in found and (11, 30) in found


def test_the_new_appointments_own_buffer_must_not_reach_the_next_one():
    busy = [(local(MONDAY, 11), local(MONDAY, 12))]
    found = hours(starts(busy=busy, buffer=timedelta(minutes=15)))
    # 10:00–11:00 plus 15 minutes of buffer would reach into the 11:00 appointment.
    assert (10, 0) not in found
    assert (9, 0) in found


def test_time_off_blocks_those_hours_only():
    busy = [(local(MONDAY, 13), local(MONDAY, 15))]
    assert hours(starts(busy=busy)) == [(9, 0), (10, 0), (11, 0), (12, 0), (15, 0), (16, 0)]


def test_a_clinic_closure_blocks_the_whole_day_for_everyone():
    free = free_starts(
        therapists=[TherapistHours(1, WEEKDAYS_9_TO_5), TherapistHours(2, WEEKDAYS_9_TO_5)],
        closures=[(MONDAY, MONDAY)],
        duration=HOUR,
        buffer=timedelta(0),
        rules=Rules(step=HOUR),
        first_day=MONDAY,
        last_day=MONDAY + timedelta(days=1),
        tz=TZ,
        now=SUNDAY_NOON,
    )
    for found in free.values():
        assert {s.astimezone(TZ).date() for s in found} == {MONDAY + timedelta(days=1)}


def test_nothing_inside_the_minimum_notice_or_in_the_past():
    now = local(MONDAY, 10, 30)
    found = hours(starts(now=now, rules=Rules(step=HOUR, min_notice=timedelta(hours=2))))
    assert found == [(13, 0), (14, 0), (15, 0), (16, 0)]


def test_the_notice_keeps_starts_on_the_grid():
    now = local(MONDAY, 9, 7)
    rules = Rules(step=timedelta(minutes=15), min_notice=HOUR)
    assert hours(starts(now=now, rules=rules))[0] == (10, 15)


def test_nothing_beyond_the_booking_window():
    rules = Rules(step=HOUR, min_notice=HOUR, max_days_ahead=3)
    found = starts(rules=rules, first_day=MONDAY, last_day=MONDAY + timedelta(days=30))
    # Sunday plus three days is Wednesday: Monday to Wednesday, nothing later.
    assert {s.date() for s in found} == {MONDAY + timedelta(days=n) for n in range(3)}
    assert max(s.date() for s in found) <= SUNDAY_NOON.date() + timedelta(days=3)


def test_march_clock_change_keeps_wall_clock_hours_and_real_offsets():
    # 2026-03-08: clocks go from 02:00 PST to 03:00 PDT.
    sunday = date(2026, 3, 8)
    weekly = {6: [(time(9), time(17))], 5: [(time(9), time(17))]}
    now = datetime(2026, 3, 6, 12, tzinfo=TZ)
    saturday = starts(
        weekly=weekly,
        first_day=sunday - timedelta(days=1),
        last_day=sunday - timedelta(days=1),
        now=now,
    )
    after = starts(weekly=weekly, first_day=sunday, last_day=sunday, now=now)
    assert hours(after) == hours(saturday) == [(h, 0) for h in range(9, 17)]
    assert after[0].utcoffset() == timedelta(hours=-7)
    assert saturday[0].utcoffset() == timedelta(hours=-8)
    assert after[0].astimezone(UTC).hour == 16 and saturday[0].astimezone(UTC).hour == 17


def test_march_night_hours_lose_the_skipped_hour():
    # Working 00:00–05:00 on the night of the change gives four real hours, not five.
    sunday = date(2026, 3, 8)
    found = starts(
        weekly={6: [(time(0), time(5))]},
        first_day=sunday,
        last_day=sunday,
        now=datetime(2026, 3, 6, tzinfo=TZ),
    )
    assert len(found) == 4
    utc = [s.astimezone(UTC) for s in found]
    assert all(b - a == HOUR for a, b in zip(utc, utc[1:], strict=False))


def test_november_clock_change_keeps_wall_clock_hours_and_real_offsets():
    # 2026-11-01: clocks go from 02:00 PDT back to 01:00 PST.
    sunday = date(2026, 11, 1)
    weekly = {6: [(time(9), time(17))]}
    found = starts(
        weekly=weekly, first_day=sunday, last_day=sunday, now=datetime(2026, 10, 30, tzinfo=TZ)
    )
    assert hours(found) == [(h, 0) for h in range(9, 17)]
    assert found[0].utcoffset() == timedelta(hours=-8)
    night = starts(
        weekly={6: [(time(0), time(5))]},
        first_day=sunday,
        last_day=sunday,
        now=datetime(2026, 10, 30, tzinfo=TZ),
    )
    assert len(night) == 6  # the repeated hour is a real hour of work


def test_no_preference_merges_every_therapists_times():
    monday_only = {0: [(time(9), time(11))]}
    free = free_starts(
        therapists=[
            TherapistHours(1, monday_only, [(local(MONDAY, 9), local(MONDAY, 10))]),
            TherapistHours(2, monday_only, [(local(MONDAY, 10), local(MONDAY, 11))]),
        ],
        closures=[],
        duration=HOUR,
        buffer=timedelta(0),
        rules=Rules(step=HOUR),
        first_day=MONDAY,
        last_day=MONDAY,
        tz=TZ,
        now=SUNDAY_NOON,
    )
    merged = merge_therapists(free)
    assert [(s.astimezone(TZ).hour, ids) for s, ids in merged.items()] == [(9, [2]), (10, [1])]


def test_grouping_by_local_day_and_nearest_times():
    found = starts(first_day=MONDAY, last_day=MONDAY + timedelta(days=1))
    days = group_by_day(found, TZ)
    assert list(days) == [MONDAY, MONDAY + timedelta(days=1)]
    assert hours(nearest(found, local(MONDAY, 12, 10), count=3)) == [(11, 0), (12, 0), (13, 0)]


def test_a_valid_day_lies_between_today_and_the_window():
    rules = Rules(max_days_ahead=10)
    assert is_valid_day(SUNDAY_NOON.date(), rules=rules, now=SUNDAY_NOON, tz=TZ)
    assert not is_valid_day(
        SUNDAY_NOON.date() - timedelta(days=1), rules=rules, now=SUNDAY_NOON, tz=TZ
    )
    assert not is_valid_day(
        SUNDAY_NOON.date() + timedelta(days=11), rules=rules, now=SUNDAY_NOON, tz=TZ
    )


def test_a_zero_step_is_refused():
    with pytest.raises(ValueError):
        starts(rules=Rules(step=timedelta(0)))
