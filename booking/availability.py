"""What is free: the engine's inputs loaded once from the database, and the one object the
booking pages ask ("which days this month?", "which times that day?", "is this time free?").

The arithmetic is booking/slots.py's (pure, no ORM); this module only reads the rows it
needs, in a fixed number of queries whatever the number of therapists or days, and never
from a cache: book_appointment calls it under its lock to re-check. An Availability notes
the schedule's version (booking.schedule_version) before it reads anything, so the pages it
answers can be cached under that version (clinic.pagecache), and says until when what it
read stays true by the clock alone (valid_until: a waitlist hold runs out).
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Min
from django.utils import timezone

from clinic.models import Closure

from . import schedule_version, slots
from .models import Appointment, BookingRules, Hold, Room, RoomClosure, TimeOff, WorkingHours

# How many days after a taken time "nearby" free times are looked for.
NEARBY_DAYS = 3


@dataclass
class Inputs:
    """Everything the engine needs about `therapists` between two local days.

    `weekly` {therapist id: {weekday: [(opens, closes)]}}; `appointments` and `time_off`
    {therapist id: [rows]} in time order (appointments with their service); `closures` the
    clinic's Closure rows that meet the range.
    """

    therapists: list
    first_day: date
    last_day: date
    weekly: dict
    appointments: dict
    time_off: dict
    closures: list
    holds: dict = None
    # The rooms the treatment may use, as slots.RoomBusy in the order they are tried; None
    # when it needs no room.
    rooms: list = None

    def closure_days(self):
        return [(closure.starts_on, closure.ends_on) for closure in self.closures]

    def hours(self, therapist_id):
        """slots.TherapistHours: the week and the busy times (appointments with their buffer,
        time off) of one therapist."""
        busy = [(a.starts_at, a.blocked_until) for a in self.appointments[therapist_id]]
        busy += [(t.starts_at, t.ends_at) for t in self.time_off[therapist_id]]
        busy += [(h.starts_at, h.blocked_until) for h in (self.holds or {}).get(therapist_id, ())]
        return slots.TherapistHours(therapist_id, self.weekly.get(therapist_id, {}), busy)


def _rooms_busy(rooms, start, end, *, ignored, holding, now):
    """[slots.RoomBusy] for `rooms` (in order) between two instants, in three queries."""
    ids = [room.pk for room in rooms]
    busy = {pk: [] for pk in ids}
    visits = Appointment.objects.active().filter(room_id__in=ids).within(start, end)
    for room_id, begins, ends in visits.exclude(pk__in=ignored).values_list(
        "room_id", "starts_at", "blocked_until"
    ):
        busy[room_id].append((begins, ends))
    held = Hold.objects.active().filter(room_id__in=ids).within(start, end)
    if holding is not None:
        held = held.exclude(offer_round=holding.offer_round)
    if now is not None:
        held = held.filter(expires_at__gt=now)
    for room_id, begins, ends in held.values_list("room_id", "starts_at", "blocked_until"):
        busy[room_id].append((begins, ends))
    closed = RoomClosure.objects.filter(room_id__in=ids).overlapping(start, end)
    for room_id, begins, ends in closed.values_list("room_id", "starts_at", "ends_at"):
        busy[room_id].append((begins, ends))
    return [slots.RoomBusy(pk, busy[pk]) for pk in ids]


def load_inputs(
    *, therapists, first_day, last_day, ignoring=None, holding=None, now=None, rooms=None
):
    """The engine's Inputs for `therapists` (already loaded) between two local days, in five
    queries (three more for the rooms of a treatment that needs one).

    `ignoring` (an appointment) does not count as busy: it is the one being moved; nor does
    `holding` (a waitlist Hold) or those offered with it: it is its holder who is booking.
    Every other active hold is busy, for patients and staff alike, unless it ran out before
    `now` (given): its time is free though the beat has not ended it yet (booking it ends it
    first). `rooms` (Room rows in the order to try them) are the rooms the treatment may
    use; None when it needs none. A visit being moved frees its room too, and so does the
    other visit booked with it (a couples booking moves as one).
    """
    tz = timezone.get_default_timezone()
    ids = [therapist.pk for therapist in therapists]
    # A day's margin either side: a long appointment or time off can reach across midnight.
    start = slots.day_bounds(first_day - timedelta(days=1), tz)[0]
    end = slots.day_bounds(last_day + timedelta(days=1), tz)[1]
    weekly = WorkingHours.objects.filter(therapist_id__in=ids).as_weekly()
    time_off = {pk: [] for pk in ids}
    for absence in TimeOff.objects.filter(therapist_id__in=ids).overlapping(start, end):
        time_off[absence.therapist_id].append(absence)
    appointments = {pk: [] for pk in ids}
    ignored = []
    if ignoring is not None:
        ignored = [ignoring.pk]
        if ignoring.pair is not None:
            ignored = list(Appointment.objects.together_with(ignoring).values_list("pk", flat=True))
    rows = Appointment.objects.active().filter(therapist_id__in=ids).within(start, end)
    rows = rows.exclude(pk__in=ignored)
    for appointment in rows.select_related("service", "room").order_by("starts_at"):
        appointments[appointment.therapist_id].append(appointment)
    closures = list(Closure.objects.covering(first_day, last_day).order_by("starts_on"))
    holds = {pk: [] for pk in ids}
    held = Hold.objects.active().filter(therapist_id__in=ids).within(start, end)
    if holding is not None:
        held = held.exclude(offer_round=holding.offer_round)
    if now is not None:
        held = held.filter(expires_at__gt=now)
    for hold in held.select_related("entry").order_by("starts_at"):
        holds[hold.therapist_id].append(hold)
    return Inputs(
        therapists=list(therapists),
        first_day=first_day,
        last_day=last_day,
        weekly=weekly,
        appointments=appointments,
        time_off=time_off,
        closures=closures,
        holds=holds,
        rooms=None
        if rooms is None
        else _rooms_busy(rooms, start, end, ignored=ignored, holding=holding, now=now),
    )


def rooms_for(service):
    """The Room rows `service` may use, in the order they are tried; None if it needs none."""
    if not service.room_need:
        return None
    return list(Room.objects.suiting(service))


def free_starts(
    *,
    service,
    therapists,
    first_day,
    last_day,
    now=None,
    rules=None,
    ignoring=None,
    holding=None,
    rooms=None,
):
    """{therapist id: [free starts]} for `service` between two local days (both included),
    a suitable room free as well when it needs one (`rooms`: the rows to try, already
    locked by a booking; read here when not given)."""
    now = now or timezone.now()
    rules = rules or BookingRules.current()
    if rooms is None:
        rooms = rooms_for(service)
    inputs = load_inputs(
        therapists=therapists,
        first_day=first_day,
        last_day=last_day,
        ignoring=ignoring,
        holding=holding,
        now=now,
        rooms=rooms,
    )
    return slots.free_starts(
        therapists=[inputs.hours(therapist.pk) for therapist in therapists],
        closures=inputs.closure_days(),
        duration=service.duration,
        buffer=service.buffer,
        rules=rules.for_engine(),
        first_day=first_day,
        last_day=last_day,
        tz=timezone.get_default_timezone(),
        now=now,
        rooms=inputs.rooms,
    )


def free_room(*, service, rooms, start, now=None, ignoring=None, holding=None):
    """The first of `rooms` free for `service` at `start` (its buffer counted), or None."""
    tz = timezone.get_default_timezone()
    day = start.astimezone(tz).date()
    begin = slots.day_bounds(day - timedelta(days=1), tz)[0]
    end = slots.day_bounds(day + timedelta(days=1), tz)[1]
    ignored = []
    if ignoring is not None:
        ignored = list(Appointment.objects.together_with(ignoring).values_list("pk", flat=True))
    busy = _rooms_busy(rooms, begin, end, ignored=ignored, holding=holding, now=now)
    room_id = slots.free_room(busy, start, start + service.duration + service.buffer)
    return next((room for room in rooms if room.pk == room_id), None)


class OutsideBookingWindow(ValueError):
    """A day or month a patient cannot book online (past, or beyond the last bookable day)."""


def day_state(day, *, today, last_day, free, worked, closed):
    """What the month says about one day, in words as well as colour: free, past, done (today,
    nothing left), full (no free time left), closed (nobody works then, or a clinic closure)
    or not bookable yet."""
    if day < today:
        return "past"
    if day > last_day:
        return "later"
    if free:
        return "free"
    if day == today:
        return "done"  # the rest of today is past or too soon to book
    if day.weekday() not in worked or any(first <= day <= last for first, last in closed):
        return "closed"
    return "full"


@dataclass(frozen=True)
class Month:
    """A month view: its weeks of days (Sunday first), which of them have free times, each
    day's state (day_state), and the months either side that can be shown."""

    month: date
    weeks: list
    free_days: dict
    states: dict
    first_free: datetime | None
    previous_month: date | None
    next_month: date | None


class Availability:
    """The free times of one `service` with some `therapists`, as a patient sees them `now`
    (for a treatment for two: the times two of them, `required` among them, are both free).

    The one object the booking pages ask: it reads the rules once and the database once per
    question. `ignoring` is an appointment being moved (its own time counts as free);
    `holding` a waitlist hold whose holder is asking (its time counts as free for them).
    """

    def __init__(
        self,
        *,
        service,
        therapists,
        now=None,
        rules=None,
        ignoring=None,
        holding=None,
        required=(),
    ):
        self.service = service
        self.therapists = list(therapists)
        # A treatment for two: the therapists that must be among the two (chosen by name).
        self.required = {therapist.pk for therapist in required}
        self.now = now or timezone.now()
        # Read before anything it versions: a page cached under it may then show more than
        # that version, never less. None (no cache) for someone moving or holding a time.
        self.version = (
            schedule_version.read_token() if ignoring is None and holding is None else None
        )
        self.rules = rules or BookingRules.current()
        self.ignoring = ignoring
        self.holding = holding
        self.tz = timezone.get_default_timezone()
        engine_rules = self.rules.for_engine()
        self.today = self.now.astimezone(self.tz).date()
        self.last_day = slots.last_bookable_day(rules=engine_rules, now=self.now, tz=self.tz)

    def starts(self, first_day, last_day):
        """[free starts] between two local days, ascending, any of the therapists."""
        free = free_starts(
            service=self.service,
            therapists=self.therapists,
            first_day=first_day,
            last_day=last_day,
            now=self.now,
            rules=self.rules,
            ignoring=self.ignoring,
            holding=self.holding,
        )
        if self.service.for_two:  # two therapists side by side, the chosen among them
            together = slots.side_by_side(free)
            starts = [start for start, ids in together.items() if self.required <= set(ids)]
        else:
            starts = slots.merge_therapists(free)
        if self.ignoring is not None:  # its own time is no time to move to
            return [start for start in starts if start != self.ignoring.starts_at]
        return list(starts)

    def valid_until(self):
        """When the first active waitlist hold runs out (its time is free from then on, with
        no write to say so), or None: what this read shows stays true until then."""
        first = (
            Hold.objects.active()
            .filter(expires_at__gt=self.now)
            .aggregate(first=Min("expires_at"))["first"]
        )
        return first

    def check_day(self, day):
        """Raise OutsideBookingWindow for a day that cannot be booked online."""
        if not self.today <= day <= self.last_day:
            raise OutsideBookingWindow(day)

    def start_on(self, day, at):
        """The instant `at` (a wall-clock time) on local `day`; the day is checked first,
        since year 1 or 9999 has no UTC instant."""
        self.check_day(day)
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)

    def times_on(self, day):
        """[free starts] on local `day`; OutsideBookingWindow for a day outside the window."""
        self.check_day(day)
        return self.starts(day, day)

    def is_free(self, start):
        day = start.astimezone(self.tz).date()
        return start in self.times_on(day)

    def nearby(self, start, *, count=6):
        """Free starts near `start` (the same day and the next few), closest first in time
        order; `start` itself left out."""
        day = start.astimezone(self.tz).date()
        found = [s for s in self.starts(day, day + timedelta(days=NEARBY_DAYS)) if s != start]
        return slots.nearest(found, start, count)

    def opening_month(self):
        """The Month the calendar opens on: this one, or the next when nothing in this one
        is free any more (late on its last day) and the next can be booked."""
        month = self.month(self.today.replace(day=1))
        if month.first_free is None and month.next_month is not None:
            return self.month(month.next_month)
        return month

    def month(self, first):
        """The Month view of the month beginning `first` (a date on the 1st); raises
        OutsideBookingWindow for a month before this one or after the last bookable day."""
        this_month = self.today.replace(day=1)
        if first < this_month or first > self.last_day:
            raise OutsideBookingWindow(first)
        month_end = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        starts = self.starts(max(first, self.today), min(month_end, self.last_day))
        previous_month = (first - timedelta(days=1)).replace(day=1)
        next_month = month_end + timedelta(days=1)
        weeks = calendar.Calendar(firstweekday=6).monthdatescalendar(first.year, first.month)
        free_days = slots.group_by_day(starts, self.tz)
        # Two queries whatever the size of the clinic: tells a fully booked day from a closed one.
        worked = WorkingHours.objects.filter(therapist__in=self.therapists).weekdays()
        closed = list(
            Closure.objects.covering(first, month_end).values_list("starts_on", "ends_on")
        )
        states = {
            day: day_state(
                day,
                today=self.today,
                last_day=self.last_day,
                free=bool(free_days.get(day)),
                worked=worked,
                closed=closed,
            )
            for week in weeks
            for day in week
        }
        return Month(
            month=first,
            weeks=weeks,
            free_days=free_days,
            states=states,
            first_free=starts[0] if starts else None,
            previous_month=previous_month if previous_month >= this_month else None,
            next_month=next_month if next_month <= self.last_day else None,
        )
