"""Matching one freed time against 10,000 waitlist entries (booking.waitlist.suited).

Pure Python, no database: the entries are built in memory with a spread of treatments,
therapists, date ranges and parts of the day, so about one in twenty suits. Prints the
median and the slowest of the runs in ms (target: under 50 ms).

    .venv/bin/python bench/waitlist.py [entries] [runs]
"""

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from booking.waitlist import FreedTime, Wish, suited  # noqa: E402

TZ = ZoneInfo("America/Los_Angeles")
PARTS = ("morning", "afternoon", "evening")
JOINED_FROM = datetime(2027, 1, 1, tzinfo=UTC)


def entries(count, *, today, seed=18):
    rng = random.Random(seed)
    made = []
    for n in range(count):
        first = today + timedelta(days=rng.randrange(30))
        last = first + timedelta(days=rng.randrange(14))
        days = (
            frozenset(first + timedelta(days=d) for d in rng.sample(range(14), 3))
            if rng.random() < 0.3
            else frozenset()
        )
        made.append(
            Wish(
                entry_id=n + 1,
                service_id=rng.randrange(1, 7),
                therapist_id=rng.choice((None, None, 1, 2, 3, 4)),
                first_day=first,
                last_day=last,
                days=days,
                parts=frozenset(rng.sample(PARTS, rng.randrange(1, 4))),
                joined_at=datetime(2027, 1, 1, tzinfo=UTC)
                + timedelta(seconds=rng.randrange(10**7)),
            )
        )
    return made


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    now = datetime(2027, 3, 1, 9, tzinfo=TZ)
    wishes = entries(count, today=now.date())
    freed = FreedTime(
        therapist_id=2,
        start=datetime(2027, 3, 10, 10, tzinfo=TZ),
        end=datetime(2027, 3, 10, 12, tzinfo=TZ),
        offers={1: timedelta(minutes=75), 2: timedelta(minutes=45), 3: timedelta(minutes=90)},
    )
    timings, found = [], []
    for _ in range(runs):
        started = time.perf_counter()
        found = suited(freed, wishes, tz=TZ, now=now, notice=timedelta(hours=2))
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"waitlist matching: {count} entries, {len(found)} suited; "
        f"median {statistics.median(timings):.1f} ms, slowest {max(timings):.1f} ms "
        f"over {runs} runs (target < 50 ms)"
    )


if __name__ == "__main__":
    main()
