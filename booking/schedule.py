"""The staff schedule: each therapist's appointments, free time and time off, day by day;
or each room's visits, held times and closures (the room view).

Reads only. Everything a page shows is loaded by availability.load_inputs (the booking
engine's loader) in a fixed number of queries whatever the number of therapists or days;
the free time between appointments comes from the pure slots.free_periods.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone

from clinic.models import Closure

from . import slots
from .availability import load_inputs
from .health import history_state
from .models import (
    Appointment,
    HealthHistory,
    Hold,
    LatestHistory,
    Room,
    RoomClosure,
    Therapist,
)

DAY, WEEK = "day", "week"
BY_THERAPIST, BY_ROOM = "therapists", "rooms"


@dataclass(frozen=True)
class Entry:
    """One line in a therapist's day: an appointment, free time or time off.

    `start` and `end` are local times clipped to the day; `from_midnight` and `to_midnight`
    say the entry began before the day or runs past it.
    """

    kind: str
    start: datetime
    end: datetime
    appointment: Appointment | None = None
    hold: Hold | None = None
    reason: str = ""
    # An appointment's health history at its start: "missing", "expired" or "current", and
    # whether its latest version has a "yes" to a red-flag question or is unconfirmed
    # (signed before the address was proven, now on its verified record).
    history: str = ""
    history_flag: bool = False
    history_unconfirmed: bool = False
    from_midnight: bool = False
    to_midnight: bool = False

    @property
    def span(self):
        begins = "00:00" if self.from_midnight else f"{self.start:%H:%M}"
        ends = "24:00" if self.to_midnight else f"{self.end:%H:%M}"
        return f"{begins}–{ends}"

    @property
    def length(self):
        """The real length, in words ("1 h 45 min"); a clock change counts as it happens."""
        minutes = int((self.end - self.start).total_seconds() // 60)
        hours, minutes = divmod(minutes, 60)
        if not hours:
            return f"{minutes} min"
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"

    @property
    def buffer_minutes(self):
        """The time an appointment keeps free after it (its service's buffer when booked)."""
        appointment = self.appointment
        return int((appointment.blocked_until - appointment.ends_at).total_seconds() // 60)


@dataclass
class TherapistDay:
    therapist: Therapist
    day: date
    works: bool
    entries: list = field(default_factory=list)


@dataclass
class ScheduleDay:
    day: date
    closure: Closure | None
    columns: list = field(default_factory=list)

    @property
    def is_quiet(self):
        """Nobody shown works or has anything this day (a weekend, say)."""
        return not any(column.works or column.entries for column in self.columns)


def days_shown(day, view):
    """The days a `view` ("day" or "week", Monday to Sunday) around `day` covers."""
    if view == WEEK:
        monday = day - timedelta(days=day.weekday())
        return [monday + timedelta(days=n) for n in range(7)]
    return [day]


def step(view):
    """How far "previous" and "next" move."""
    return timedelta(days=7 if view == WEEK else 1)


def _clipped(kind, start, end, day, tz, **extra):
    """An Entry for the part of [start, end) on local `day`, or None if none of it is."""
    day_start, day_end = slots.day_bounds(day, tz)
    if end <= day_start or start >= day_end:
        return None
    return Entry(
        kind=kind,
        start=max(start, day_start).astimezone(tz),
        end=min(end, day_end).astimezone(tz),
        from_midnight=start < day_start,
        to_midnight=end > day_end,
        **extra,
    )


def load_schedule(*, therapists, first_day, last_day, tz=None):
    """[ScheduleDay] from `first_day` to `last_day` (local days, both included).

    Each day holds one TherapistDay per therapist in `therapists` (already loaded), with
    their active appointments (service loaded), waitlist holds (entry loaded), free time and
    time off in time order, each appointment with its health history's state (booking.health).
    Six queries whatever the number of therapists or days.
    """
    tz = tz or timezone.get_default_timezone()
    inputs = load_inputs(therapists=therapists, first_day=first_day, last_day=last_day)
    shown = [a for therapist in therapists for a in inputs.appointments[therapist.pk]]
    signed = HealthHistory.objects.latest_per_patient({a.patient_id for a in shown if a.patient_id})

    def history(appointment):
        latest = signed.get(appointment.patient_id, LatestHistory())
        return {
            "history": history_state(latest.signed_at, appointment.starts_at),
            "history_flag": latest.flagged,
            "history_unconfirmed": latest.unconfirmed,
        }

    closures = inputs.closures
    free = {
        therapist.pk: slots.free_periods(
            hours=inputs.hours(therapist.pk),
            closures=inputs.closure_days(),
            first_day=first_day,
            last_day=last_day,
            tz=tz,
        )
        for therapist in therapists
    }

    days = []
    day = first_day
    while day <= last_day:
        closure = next((c for c in closures if c.starts_on <= day <= c.ends_on), None)
        schedule_day = ScheduleDay(day=day, closure=closure)
        for therapist in therapists:
            entries = [
                _clipped(
                    "appointment",
                    a.starts_at,
                    a.ends_at,
                    day,
                    tz,
                    appointment=a,
                    **history(a),
                )
                for a in inputs.appointments[therapist.pk]
            ]
            entries += [
                _clipped("time_off", t.starts_at, t.ends_at, day, tz, reason=t.reason)
                for t in inputs.time_off[therapist.pk]
            ]
            entries += [
                _clipped("hold", h.starts_at, h.blocked_until, day, tz, hold=h)
                for h in inputs.holds[therapist.pk]
            ]
            entries += [
                _clipped("free", free_start, free_end, day, tz)
                for free_start, free_end in free[therapist.pk][day]
            ]
            schedule_day.columns.append(
                TherapistDay(
                    therapist=therapist,
                    day=day,
                    works=bool(inputs.weekly.get(therapist.pk, {}).get(day.weekday())),
                    entries=sorted(
                        (e for e in entries if e is not None), key=lambda e: (e.start, e.end)
                    ),
                )
            )
        days.append(schedule_day)
        day += timedelta(days=1)
    return days


@dataclass
class RoomDay:
    room: Room
    day: date
    entries: list = field(default_factory=list)
    works: bool = True  # a room has no hours: only visits, holds and closures


def load_room_schedule(*, rooms, first_day, last_day, tz=None):
    """[ScheduleDay] whose columns are one RoomDay per room in `rooms` (already loaded): the
    active visits in it (therapist and service loaded), waitlist holds and the room's
    closures, in time order. Four queries whatever the number of rooms or days."""
    tz = tz or timezone.get_default_timezone()
    start = slots.day_bounds(first_day, tz)[0]
    end = slots.day_bounds(last_day, tz)[1]
    ids = [room.pk for room in rooms]
    visits = (
        Appointment.objects.active()
        .filter(room_id__in=ids)
        .within(start, end)
        .select_related("therapist", "service")
        .order_by("starts_at")
    )
    holds = Hold.objects.active().filter(room_id__in=ids).within(start, end)
    closed = RoomClosure.objects.filter(room_id__in=ids).overlapping(start, end)
    clinic_closures = list(Closure.objects.covering(first_day, last_day))
    by_room = {pk: [] for pk in ids}
    for visit in visits:
        by_room[visit.room_id].append(("appointment", visit.starts_at, visit.blocked_until, visit))
    for hold in holds.select_related("entry", "service"):
        by_room[hold.room_id].append(("hold", hold.starts_at, hold.blocked_until, hold))
    for closure in closed:
        by_room[closure.room_id].append(("closed", closure.starts_at, closure.ends_at, closure))

    days = []
    day = first_day
    while day <= last_day:
        closure = next((c for c in clinic_closures if c.starts_on <= day <= c.ends_on), None)
        schedule_day = ScheduleDay(day=day, closure=closure)
        for room in rooms:
            entries = []
            for kind, begins, ends, row in by_room[room.pk]:
                extra = {
                    "appointment": {"appointment": row},
                    "hold": {"hold": row},
                    "closed": {"reason": getattr(row, "reason", "")},
                }[kind]
                entries.append(_clipped(kind, begins, ends, day, tz, **extra))
            schedule_day.columns.append(
                RoomDay(
                    room=room,
                    day=day,
                    entries=sorted(
                        (e for e in entries if e is not None), key=lambda e: (e.start, e.end)
                    ),
                )
            )
        days.append(schedule_day)
        day += timedelta(days=1)
    return days
