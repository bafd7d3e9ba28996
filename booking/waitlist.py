"""The waitlist's matching: which entries a freed time suits, in the order they joined.

Pure like booking.slots: no ORM and no clock. The caller turns WaitlistEntry rows into
Wish values (WaitlistEntry.for_matching) and passes `now`. A freed time's day and part of
the day are read from its start in the clinic's zone, so on the days the clocks change a
start keeps the wall-clock day and hour the patient sees.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

# Where each part of the day begins, wall-clock in the clinic's zone.
AFTERNOON_FROM = time(12, 0)
EVENING_FROM = time(17, 0)


@dataclass(frozen=True)
class Wish:
    """What one waitlist entry asks for."""

    entry_id: int
    service_id: int
    therapist_id: int | None  # None: any therapist offering the treatment
    first_day: date
    last_day: date
    days: frozenset  # some local dates of the range only; empty: every day of it
    parts: frozenset  # of "morning", "afternoon", "evening"
    joined_at: datetime


@dataclass(frozen=True)
class FreedTime:
    """A time that became free: one therapist from `start` until `end` (aware instants).

    `offers` maps each treatment the therapist offers to the time it holds (its duration
    plus its buffer), so an entry is only offered a time its treatment fits in.
    """

    therapist_id: int
    start: datetime
    end: datetime
    offers: dict


def part_of_day(wall):
    """'morning', 'afternoon' or 'evening' for a wall-clock time."""
    if wall < AFTERNOON_FROM:
        return "morning"
    if wall < EVENING_FROM:
        return "afternoon"
    return "evening"


def suits(wish, freed, *, tz, earliest):
    """Whether `freed` suits `wish`, for a start no sooner than `earliest`."""
    held = freed.offers.get(wish.service_id)
    if held is None or freed.start + held > freed.end or freed.start < earliest:
        return False
    if wish.therapist_id is not None and wish.therapist_id != freed.therapist_id:
        return False
    local = freed.start.astimezone(tz)
    day = local.date()
    if not wish.first_day <= day <= wish.last_day:
        return False
    if wish.days and day not in wish.days:
        return False
    return part_of_day(local.time()) in wish.parts


def suited(freed, wishes, *, tz, now, notice=timedelta(0)):
    """The wishes `freed` suits, first joined first (ties by entry id).

    A start sooner than `notice` after `now` suits nobody: it could not be booked online.
    """
    earliest = now + notice
    found = [wish for wish in wishes if suits(wish, freed, tz=tz, earliest=earliest)]
    return sorted(found, key=lambda wish: (wish.joined_at, wish.entry_id))


def in_line(freed_times, wishes, *, tz, now, notice=timedelta(0)):
    """[(wish, [therapist ids])]: the wishes that one start, freed with any of several
    therapists (`freed_times`, one FreedTime each, in the order to try them), suits, first
    joined first, each with the therapists it suits in that order. A room's freed time
    is such a start: whoever of them it lets work then."""
    suiting = {}
    for freed in freed_times:
        for wish in suited(freed, wishes, tz=tz, now=now, notice=notice):
            suiting.setdefault(wish, []).append(freed.therapist_id)
    return sorted(suiting.items(), key=lambda item: (item[0].joined_at, item[0].entry_id))
