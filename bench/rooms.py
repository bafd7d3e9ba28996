"""The availability engine with rooms: 10 therapists, 4 rooms, 60 days, 2,000 appointments.

Pure Python, no database (booking.slots.free_starts with `rooms`): every appointment keeps a
therapist and a room busy, buffer included; a time is free only when the therapist and one
of the rooms are. Prints the median and the slowest of the runs in ms for "no preference"
(all 10 therapists, any of the 4 rooms) and for a treatment for two (two therapists side by
side in the one couples room) (target: under 50 ms).

    .venv/bin/python bench/rooms.py [appointments] [runs]
"""

import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as wall
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from booking import slots  # noqa: E402

TZ = ZoneInfo("America/Los_Angeles")
THERAPISTS, ROOMS, DAYS = 10, 4, 60
FIRST_DAY = date(2027, 3, 1)
NOW = datetime(2027, 2, 28, 12, tzinfo=TZ)
WEEK = {day: [(wall(9), wall(12, 30)), (wall(13, 30), wall(18))] for day in range(6)}


def schedule(count, *, seed=19):
    """(therapists' TherapistHours, rooms' RoomBusy): `count` visits of 30 to 90 minutes plus
    a 15-minute buffer, each with a random therapist and room, on a 15-minute grid."""
    rng = random.Random(seed)
    therapist_busy = {n: [] for n in range(1, THERAPISTS + 1)}
    room_busy = {n: [] for n in range(1, ROOMS + 1)}
    for _ in range(count):
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        start = datetime.combine(day, wall(9), tzinfo=TZ) + timedelta(
            minutes=15 * rng.randrange(32)
        )
        end = start + timedelta(minutes=rng.choice((30, 60, 90)) + 15)
        therapist_busy[rng.randrange(1, THERAPISTS + 1)].append((start, end))
        room_busy[rng.randrange(1, ROOMS + 1)].append((start, end))
    therapists = [slots.TherapistHours(n, WEEK, busy) for n, busy in therapist_busy.items()]
    rooms = [slots.RoomBusy(n, busy) for n, busy in room_busy.items()]
    return therapists, rooms


def run(therapists, rooms, *, for_two=False):
    free = slots.free_starts(
        therapists=therapists,
        closures=[],
        duration=timedelta(minutes=60),
        buffer=timedelta(minutes=15),
        rules=slots.Rules(
            step=timedelta(minutes=15), min_notice=timedelta(hours=2), max_days_ahead=DAYS
        ),
        first_day=FIRST_DAY,
        last_day=FIRST_DAY + timedelta(days=DAYS - 1),
        tz=TZ,
        now=NOW,
        rooms=rooms,
    )
    if for_two:
        return list(slots.side_by_side(free))
    return list(slots.merge_therapists(free))


def measure(label, runs, work):
    timings, found = [], []
    for _ in range(runs):
        started = time.perf_counter()
        found = work()
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"{label}: {len(found)} free starts; median {statistics.median(timings):.1f} ms, "
        f"slowest {max(timings):.1f} ms over {runs} runs (target < 50 ms)"
    )


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    therapists, rooms = schedule(count)
    shape = f"{THERAPISTS} therapists x {ROOMS} rooms x {DAYS} days x {count} appointments"
    measure(f"engine with rooms, no preference ({shape})", runs, lambda: run(therapists, rooms))
    measure(
        f"engine with rooms, two side by side in the couples room ({shape})",
        runs,
        lambda: run(therapists, rooms[:1], for_two=True),
    )
    measure(f"engine without rooms, for comparison ({shape})", runs, lambda: run(therapists, None))


if __name__ == "__main__":
    main()
