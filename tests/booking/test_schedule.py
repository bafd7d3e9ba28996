"""The staff schedule: free periods worked out without a database, then loaded in fixed queries."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.slots import TherapistHours, free_periods

TZ = ZoneInfo("America/Los_Angeles")
WITH_LUNCH = {day: [(time(9), time(12)), (time(13), time(17))] for day in range(7)}
MONDAY = date(2027, 3, 1)  # a week with no clock change
SPRING_FORWARD = date(2027, 3, 14)  # a Sunday: 02:00 becomes 03:00
FALL_BACK = date(2027, 11, 7)  # a Sunday: 02:00 happens twice


def local(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def periods(*, weekly=None, busy=(), closures=(), first_day=MONDAY, last_day=MONDAY):
    found = free_periods(
        hours=TherapistHours(1, WITH_LUNCH if weekly is None else weekly, list(busy)),
        closures=list(closures),
        first_day=first_day,
        last_day=last_day,
        tz=TZ,
    )
    return {
        day: [(f"{s.astimezone(TZ):%H:%M}", f"{e.astimezone(TZ):%H:%M}") for s, e in spans]
        for day, spans in found.items()
    }


def test_a_free_day_is_the_working_hours_with_the_break_left_out():
    assert periods()[MONDAY] == [("09:00", "12:00"), ("13:00", "17:00")]


def test_an_appointment_and_its_buffer_are_not_free():
    # 10:00–11:00 with a 15-minute buffer blocks until 11:15.
    busy = [(local(MONDAY, 10), local(MONDAY, 11, 15))]
    assert periods(busy=busy)[MONDAY] == [
        ("09:00", "10:00"),
        ("11:15", "12:00"),
        ("13:00", "17:00"),
    ]


def test_back_to_back_appointments_leave_no_sliver_between_them():
    busy = [(local(MONDAY, 9), local(MONDAY, 10)), (local(MONDAY, 10), local(MONDAY, 11))]
    assert periods(busy=busy)[MONDAY] == [("11:00", "12:00"), ("13:00", "17:00")]


def test_an_appointment_across_the_break_cuts_both_working_intervals():
    busy = [(local(MONDAY, 11, 30), local(MONDAY, 13, 30))]
    assert periods(busy=busy)[MONDAY] == [("09:00", "11:30"), ("13:30", "17:00")]


def test_time_off_is_not_free_and_a_whole_day_off_leaves_nothing():
    afternoon_off = [(local(MONDAY, 13), local(MONDAY, 15))]
    assert periods(busy=afternoon_off)[MONDAY] == [("09:00", "12:00"), ("15:00", "17:00")]
    week_off = [(local(MONDAY, 0), local(MONDAY + timedelta(days=7), 0))]
    assert periods(busy=week_off, last_day=MONDAY + timedelta(days=1)) == {
        MONDAY: [],
        MONDAY + timedelta(days=1): [],
    }


def test_a_clinic_closure_leaves_its_days_without_free_time_and_spares_the_others():
    tuesday = MONDAY + timedelta(days=1)
    found = periods(closures=[(tuesday, tuesday)], last_day=MONDAY + timedelta(days=2))
    assert found[MONDAY] == [("09:00", "12:00"), ("13:00", "17:00")]
    assert found[tuesday] == []
    assert found[tuesday + timedelta(days=1)] == [("09:00", "12:00"), ("13:00", "17:00")]


def test_a_day_without_working_hours_is_listed_with_no_free_time():
    assert periods(weekly={0: [(time(9), time(17))]}, last_day=MONDAY + timedelta(days=1)) == {
        MONDAY: [("09:00", "17:00")],
        MONDAY + timedelta(days=1): [],
    }


def test_on_the_spring_forward_day_wall_clock_hours_hold_and_the_night_is_an_hour_shorter():
    weekly = {6: [(time(1), time(4)), (time(9), time(17))]}
    found = free_periods(
        hours=TherapistHours(1, weekly, [(local(SPRING_FORWARD, 10), local(SPRING_FORWARD, 11))]),
        closures=[],
        first_day=SPRING_FORWARD,
        last_day=SPRING_FORWARD,
        tz=TZ,
    )[SPRING_FORWARD]
    assert [(f"{s.astimezone(TZ):%H:%M}", f"{e.astimezone(TZ):%H:%M}") for s, e in found] == [
        ("01:00", "04:00"),
        ("09:00", "10:00"),
        ("11:00", "17:00"),
    ]
    assert [e - s for s, e in found] == [timedelta(hours=2), timedelta(hours=1), timedelta(hours=6)]


def test_on_the_fall_back_day_the_night_is_an_hour_longer():
    weekly = {6: [(time(0), time(3))]}
    found = free_periods(
        hours=TherapistHours(1, weekly, []),
        closures=[],
        first_day=FALL_BACK,
        last_day=FALL_BACK,
        tz=TZ,
    )[FALL_BACK]
    assert [e - s for s, e in found] == [timedelta(hours=4)]


# --- loaded from the database ------------------------------------------------------------


@pytest.mark.django_db
def test_a_week_for_many_therapists_loads_in_as_few_queries_as_one_day_for_one(
    booking_rules, clinic, service, make_therapist, at, patient, django_assert_num_queries
):
    from booking.models import TimeOff
    from booking.schedule import load_schedule
    from booking.services import book_appointment

    therapists = [make_therapist() for _ in range(4)]
    for n, therapist in enumerate(therapists):
        for day in range(5):
            book_appointment(
                service=service,
                therapist=therapist,
                start=at((9, 10, 13, 14)[n], days=day),
                patient=patient,
            )
        TimeOff.objects.create(
            therapist=therapist, starts_at=at(15, days=2), ends_at=at(17, days=2)
        )
    first_day = at(9).date()

    # Five for the schedule, one for the patients' health histories.
    with django_assert_num_queries(6):
        one = load_schedule(therapists=therapists[:1], first_day=first_day, last_day=first_day)
    with django_assert_num_queries(6):
        week = load_schedule(
            therapists=therapists, first_day=first_day, last_day=first_day + timedelta(days=6)
        )
    assert len(one) == 1 and len(one[0].columns) == 1
    assert len(week) == 7 and all(len(day.columns) == 4 for day in week)
    wednesday_kinds = [entry.kind for entry in week[2].columns[0].entries]
    assert wednesday_kinds == ["appointment", "free", "free", "time_off"]
