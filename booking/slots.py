"""The availability engine: which start times are free. Pure: data in, times out.

No ORM here and no clock: the caller loads working hours, time off, closures and existing
appointments (booking.availability.load_inputs does it in a fixed number of queries) and
passes `now`. Times are worked out as real instants (seconds since the epoch), so a day on
which the clocks change has as many real hours as it really has; working hours are wall-
clock times in the clinic's zone, converted once per interval.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta


@dataclass(frozen=True)
class Rules:
    """The booking rules the engine needs (booking.models.BookingRules.for_engine())."""

    step: timedelta = timedelta(minutes=15)
    min_notice: timedelta = timedelta(hours=2)
    max_days_ahead: int = 60


@dataclass
class TherapistHours:
    """One therapist's week and the times they are not free.

    `weekly` maps a weekday (Monday 0) to [(opens, closes), ...] wall-clock times;
    `busy` lists (start, end) aware datetimes: appointments with their buffer, time off.
    """

    therapist_id: int
    weekly: dict = field(default_factory=dict)
    busy: list = field(default_factory=list)


@dataclass
class RoomBusy:
    """One room a treatment may use and the times it is not free: (start, end) aware
    datetimes (visits and held times with their buffer, the room's closures)."""

    room_id: int
    busy: list = field(default_factory=list)


class _Rooms:
    """Rooms in the order they are tried, each with its merged busy times as instants."""

    def __init__(self, rooms):
        self.rooms = []
        for room in rooms:
            merged = _merged([(_epoch(start), _epoch(end)) for start, end in room.busy])
            self.rooms.append((room.room_id, [b for b, _ in merged], [e for _, e in merged]))
        self.answers = {}

    def first_free(self, start, end):
        """The first room free for all of [start, end) (instants), or None."""
        key = (start, end)
        if key not in self.answers:
            found = None
            for room_id, begins, ends in self.rooms:
                index = bisect_right(ends, start)  # the first busy time ending after start
                if index == len(begins) or begins[index] >= end:
                    found = room_id
                    break
            self.answers[key] = found
        return self.answers[key]


def free_room(rooms, start, end):
    """The id of the first of `rooms` (RoomBusy, in the order to try them) free for all of
    [start, end), or None when every one is taken then."""
    return _Rooms(rooms).first_free(_epoch(start), _epoch(end))


def _epoch(moment):
    return int(moment.timestamp())


def _local_epoch(day, wall, tz):
    """The instant a wall-clock time happens on `day`, or None if the clocks skip it."""
    local = datetime.combine(day, wall, tzinfo=tz)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # e.g. 02:30 on the March morning the clocks go forward
    return int(instant.timestamp())


def day_bounds(day, tz):
    """The instants [start, end) of one local calendar day (23 or 25 hours at a change)."""
    return (
        datetime.combine(day, time(0), tzinfo=tz),
        datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz),
    )


def _closed(closures, first_day, last_day, tz):
    """The clinic's closures ((first day, last day) pairs) that meet the range, as instants."""
    closed = []
    for closure_first, closure_last in closures:
        if closure_last < first_day or closure_first > last_day:
            continue
        closed.append(
            (_epoch(day_bounds(closure_first, tz)[0]), _epoch(day_bounds(closure_last, tz)[1]))
        )
    return closed


def _merged(intervals):
    """Sorted, merged (start, end) integer intervals."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, end])
    return merged


def last_bookable_day(*, rules, now, tz):
    return now.astimezone(tz).date() + timedelta(days=rules.max_days_ahead)


def free_starts(
    *, therapists, closures, duration, buffer, rules, first_day, last_day, tz, now, rooms=None
):
    """{therapist id: [free start instants, ascending]} between two local days (included).

    A start is free when the appointment fits inside one of the therapist's working
    intervals that day, and the appointment plus `buffer` meets none of their busy times
    nor a clinic closure (`closures`: (first day, last day) pairs, both included), and, when
    the treatment needs a room (`rooms`: the RoomBusy it may use; None when it needs none),
    one of those rooms is free for all of it too, buffer included. Starts sooner than
    `rules.min_notice` after `now`, or after the last bookable day, are left out.
    Returned instants are aware datetimes in UTC; show them in the clinic's zone.
    """
    last_day = min(last_day, last_bookable_day(rules=rules, now=now, tz=tz))
    earliest = _epoch(now + rules.min_notice)
    length = int(duration.total_seconds())
    held = length + int(buffer.total_seconds())
    step = int(rules.step.total_seconds())
    if step <= 0 or length <= 0:
        raise ValueError("The slot step and the duration must be positive.")

    days = []
    day = first_day
    while day <= last_day:
        days.append(day)
        day += timedelta(days=1)

    closed = _closed(closures, first_day, last_day, tz)
    # Asked once per (start, end) whichever therapist asks: the rooms are shared.
    room_free = None if rooms is None else _Rooms(rooms).first_free

    # Working intervals as instants, once per (weekday pattern, day), shared by therapists.
    interval_cache = {}

    def intervals_on(day, pattern):
        key = (day, pattern)
        if key not in interval_cache:
            found = []
            for opens, closes in pattern:
                start, end = _local_epoch(day, opens, tz), _local_epoch(day, closes, tz)
                if start is None or end is None:
                    continue  # a wall time the clocks skip: too odd to guess at
                found.append((start, end))
            interval_cache[key] = found
        return interval_cache[key]

    free = {}
    for hours in therapists:
        busy = _merged([(_epoch(start), _epoch(end)) for start, end in hours.busy] + closed)
        patterns = {day: tuple(spans) for day, spans in hours.weekly.items()}
        starts = []
        index, count = 0, len(busy)
        for day in days:
            pattern = patterns.get(day.weekday())
            if not pattern:
                continue
            for opens_at, closes_at in intervals_on(day, pattern):
                first = opens_at
                if first < earliest:
                    # Jump to the first step on the grid at or after the notice.
                    first += -(-(earliest - first) // step) * step
                for start in range(first, closes_at - length + 1, step):
                    end = start + held
                    while index < count and busy[index][1] <= start:
                        index += 1
                    if index < count and busy[index][0] < end:
                        continue
                    if room_free is not None and room_free(start, end) is None:
                        continue
                    starts.append(start)
        free[hours.therapist_id] = [datetime.fromtimestamp(s, UTC) for s in starts]
    return free


def side_by_side(free, *, together=2):
    """{start: [therapist ids free then]} keeping only starts at which at least `together`
    of them are free (a treatment for two: two therapists at once, in one room)."""
    return {start: ids for start, ids in merge_therapists(free).items() if len(ids) >= together}


def merge_therapists(free):
    """{start: [therapist ids free then]} ascending, for "no preference"."""
    merged = defaultdict(list)
    for therapist_id, starts in free.items():
        for start in starts:
            merged[start].append(therapist_id)
    return dict(sorted(merged.items()))


def group_by_day(starts, tz):
    """{local date: [starts]} for an ascending iterable of instants."""
    days = defaultdict(list)
    for start in starts:
        days[start.astimezone(tz).date()].append(start)
    return dict(days)


def nearest(starts, target, count=6):
    """The `count` starts closest in time to `target`, in time order."""
    closest = sorted(starts, key=lambda start: abs((start - target).total_seconds()))[:count]
    return sorted(closest)


def is_valid_day(day, *, rules, now, tz):
    """Whether `day` lies between today and the last bookable day."""
    today = now.astimezone(tz).date()
    return today <= day <= last_bookable_day(rules=rules, now=now, tz=tz)


def free_periods(*, hours, closures, first_day, last_day, tz):
    """{local day: [(start, end), ...]} when one therapist is working but not busy.

    The free time the staff schedule shows: `hours.weekly`'s working intervals on each
    day from `first_day` to `last_day` (both included), minus `hours.busy` (appointments
    with their buffer, time off) and the clinic's `closures` ((first day, last day) pairs).
    Worked out in real instants like free_starts, so a day the clocks change keeps its
    wall-clock hours. Every day in the range is a key; instants are aware datetimes in UTC.
    """
    busy = [(_epoch(start), _epoch(end)) for start, end in hours.busy]
    busy = _merged(busy + _closed(closures, first_day, last_day, tz))

    periods = {}
    day = first_day
    while day <= last_day:
        found = []
        for opens, closes in hours.weekly.get(day.weekday(), ()):
            start, end = _local_epoch(day, opens, tz), _local_epoch(day, closes, tz)
            if start is None or end is None:
                continue  # a wall time the clocks skip: left out, as free_starts does
            for busy_start, busy_end in busy:
                if busy_end <= start or busy_start >= end:
                    continue
                if busy_start > start:
                    found.append((start, busy_start))
                start = max(start, busy_end)
                if start >= end:
                    break
            if start < end:
                found.append((start, end))
        periods[day] = [
            (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
            for start, end in sorted(found)
        ]
        day += timedelta(days=1)
    return periods
