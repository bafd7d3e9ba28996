"""The waitlist's matching, without a database: a freed time and entries in, suited ones out."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.waitlist import FreedTime, Wish, in_line, part_of_day, suited

TZ = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)
MASSAGE, FACIAL = 1, 2
ANNA, BEN = 10, 20
# Wednesday 2027-03-03, a week with no clock change; "now" is the Monday before at noon.
WEDNESDAY = date(2027, 3, 3)
NOW = datetime(2027, 3, 1, 12, tzinfo=TZ)
SPRING_FORWARD = date(2027, 3, 14)  # 02:00 -> 03:00 in Los Angeles: a 23-hour day
FALL_BACK = date(2027, 11, 7)  # 02:00 -> 01:00: a 25-hour day
EVERY_PART = frozenset({"morning", "afternoon", "evening"})


def local(day, hour, minute=0, *, fold=0):
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).replace(fold=fold)


def freed(start, *, therapist=ANNA, length=HOUR, offers=None):
    return FreedTime(
        therapist_id=therapist,
        start=start,
        end=start + length,
        offers={MASSAGE: HOUR} if offers is None else offers,
    )


def wish(
    entry_id,
    *,
    service=MASSAGE,
    therapist=None,
    first_day=WEDNESDAY,
    last_day=WEDNESDAY,
    days=(),
    parts=EVERY_PART,
    joined_at=None,
):
    return Wish(
        entry_id=entry_id,
        service_id=service,
        therapist_id=therapist,
        first_day=first_day,
        last_day=last_day,
        days=frozenset(days),
        parts=frozenset(parts),
        joined_at=joined_at or datetime(2027, 2, 1, tzinfo=UTC) + timedelta(minutes=entry_id),
    )


def ids(found):
    return [w.entry_id for w in found]


def matched(time_freed, wishes, *, now=NOW, notice=timedelta(0)):
    return ids(suited(time_freed, wishes, tz=TZ, now=now, notice=notice))


def test_suited_entries_come_in_the_order_they_joined_not_the_order_given():
    first = wish(3, joined_at=datetime(2027, 2, 1, 9, tzinfo=UTC))
    second = wish(1, joined_at=datetime(2027, 2, 1, 10, tzinfo=UTC))
    third = wish(2, joined_at=datetime(2027, 2, 2, 8, tzinfo=UTC))
    assert matched(freed(local(WEDNESDAY, 10)), [third, second, first]) == [3, 1, 2]


def test_entries_that_joined_at_the_same_instant_keep_the_order_of_their_ids():
    same = datetime(2027, 2, 1, 9, tzinfo=UTC)
    wishes = [wish(7, joined_at=same), wish(5, joined_at=same)]
    assert matched(freed(local(WEDNESDAY, 10)), wishes) == [5, 7]


def test_a_time_suits_only_entries_for_a_treatment_the_therapist_offers_and_that_fits():
    time_freed = freed(local(WEDNESDAY, 10), length=HOUR, offers={MASSAGE: HOUR, FACIAL: 2 * HOUR})
    wishes = [wish(1, service=MASSAGE), wish(2, service=FACIAL), wish(3, service=99)]
    assert matched(time_freed, wishes) == [1]


def test_the_buffer_counts_in_whether_a_treatment_fits():
    time_freed = freed(local(WEDNESDAY, 10), length=HOUR, offers={MASSAGE: HOUR + timedelta(1)})
    assert matched(time_freed, [wish(1)]) == []


def test_an_entry_for_one_therapist_is_not_offered_another_ones_time_but_any_is():
    wishes = [wish(1, therapist=ANNA), wish(2, therapist=BEN), wish(3, therapist=None)]
    assert matched(freed(local(WEDNESDAY, 10), therapist=BEN), wishes) == [2, 3]


def test_a_start_freed_with_several_therapists_puts_all_their_entries_in_one_line():
    # A room's freed 10:00: Anna has an hour then, Ben only time for a shorter treatment.
    start = local(WEDNESDAY, 10)
    anna = freed(start, therapist=ANNA)
    ben = freed(start, therapist=BEN, offers={FACIAL: HOUR})
    wishes = [
        wish(4, therapist=ANNA),
        wish(2, therapist=BEN, service=FACIAL),
        wish(3),  # any therapist: Anna first, as given
        wish(1, therapist=BEN),  # a massage Ben has no time for
    ]
    found = in_line([anna, ben], wishes, tz=TZ, now=NOW)
    assert [(w.entry_id, whom) for w, whom in found] == [(2, [BEN]), (3, [ANNA]), (4, [ANNA])]
    both = freed(start, therapist=BEN)
    assert [whom for w, whom in in_line([both, anna], [wish(3)], tz=TZ, now=NOW)] == [[BEN, ANNA]]


def test_a_time_suits_entries_whose_range_or_chosen_days_include_its_day():
    wishes = [
        wish(1, first_day=WEDNESDAY - timedelta(2), last_day=WEDNESDAY + timedelta(2)),
        wish(2, first_day=WEDNESDAY + timedelta(1), last_day=WEDNESDAY + timedelta(5)),
        wish(3, first_day=WEDNESDAY - timedelta(5), last_day=WEDNESDAY - timedelta(1)),
        wish(
            4,
            first_day=WEDNESDAY - timedelta(2),
            last_day=WEDNESDAY + timedelta(2),
            days={WEDNESDAY - timedelta(2), WEDNESDAY},
        ),
        wish(
            5,
            first_day=WEDNESDAY - timedelta(2),
            last_day=WEDNESDAY + timedelta(2),
            days={WEDNESDAY + timedelta(1)},
        ),
    ]
    assert matched(freed(local(WEDNESDAY, 10)), wishes) == [1, 4]


def test_a_time_suits_entries_that_asked_for_its_part_of_the_day():
    wishes = [
        wish(1, parts={"morning"}),
        wish(2, parts={"afternoon"}),
        wish(3, parts={"evening"}),
        wish(4, parts={"morning", "evening"}),
    ]
    assert matched(freed(local(WEDNESDAY, 9)), wishes) == [1, 4]
    assert matched(freed(local(WEDNESDAY, 12)), wishes) == [2]
    assert matched(freed(local(WEDNESDAY, 17)), wishes) == [3, 4]


def test_parts_of_the_day_begin_at_noon_and_five():
    assert part_of_day(time(11, 59)) == "morning"
    assert part_of_day(time(12)) == "afternoon"
    assert part_of_day(time(16, 59)) == "afternoon"
    assert part_of_day(time(17)) == "evening"


def test_a_time_sooner_than_the_notice_or_already_past_suits_nobody():
    start = local(WEDNESDAY, 10)
    assert matched(freed(start), [wish(1)], now=start - HOUR, notice=2 * HOUR) == []
    assert matched(freed(start), [wish(1)], now=start + HOUR) == []
    assert matched(freed(start), [wish(1)], now=start - 3 * HOUR, notice=2 * HOUR) == [1]


def test_on_the_spring_clock_change_a_start_keeps_its_wall_clock_part_of_the_day():
    # 12:30 PDT is 19:30 UTC; read with the winter offset it would be 11:30, a morning.
    on_the_day = dict(first_day=SPRING_FORWARD, last_day=SPRING_FORWARD)
    morning = wish(1, parts={"morning"}, **on_the_day)
    afternoon = wish(2, parts={"afternoon"}, **on_the_day)
    assert matched(freed(local(SPRING_FORWARD, 12, 30)), [morning, afternoon]) == [2]
    assert matched(freed(local(SPRING_FORWARD, 11, 30)), [morning, afternoon]) == [1]
    # 03:00, the first hour after the skipped one, is still that day's morning.
    assert matched(freed(local(SPRING_FORWARD, 3)), [morning, afternoon]) == [1]


def test_on_the_fall_clock_change_a_start_keeps_its_local_day_and_part_of_the_day():
    on_the_day = dict(first_day=FALL_BACK, last_day=FALL_BACK)
    afternoon = wish(1, parts={"afternoon"}, **on_the_day)
    evening = wish(2, parts={"evening"}, **on_the_day)
    next_day = wish(3, first_day=FALL_BACK + timedelta(1), last_day=FALL_BACK + timedelta(1))
    # 16:30 PST is 00:30 UTC the next day; read with the summer offset it would be 17:30.
    start = local(FALL_BACK, 16, 30)
    assert start.astimezone(UTC).date() == FALL_BACK + timedelta(1)
    assert matched(freed(start), [afternoon, evening, next_day]) == [1]


def test_both_of_the_fall_days_repeated_hours_are_that_days_morning():
    morning = wish(1, parts={"morning"}, first_day=FALL_BACK, last_day=FALL_BACK)
    first, second = local(FALL_BACK, 1, 30, fold=0), local(FALL_BACK, 1, 30, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == HOUR  # two real instants
    assert matched(freed(first), [morning]) == [1]
    assert matched(freed(second), [morning]) == [1]
