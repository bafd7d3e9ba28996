"""Print how long fanning a newsletter issue out to 10,000 subscribers takes.

    bench/newsletter.py                  (SQLite in a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench bench/newsletter.py

Queueing only, not SMTP: each copy is rendered with its own unsubscribe link and written to
the outbox with its delivery record, one bulk INSERT of each per batch, exactly as the fan-out
task does (newsletter.services.fan_out_issue). Publishing the send tasks is counted instead
of handed to a broker, and Celery never runs a task here. `make bench` runs it both ways.
On PostgreSQL the database is created if it is missing and migrated; if the server cannot be
reached, the line says it was skipped. Figures, not a test: nothing here passes or fails.
"""

import statistics
import time as clock

import _django  # noqa: E402  (bench/ is on sys.path when a script runs)

_django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from clinic import mail  # noqa: E402
from clinic.celery import app  # noqa: E402
from clinic.models import OutgoingEmail  # noqa: E402
from newsletter import services  # noqa: E402
from newsletter.models import Delivery, NewsletterIssue, Subscriber  # noqa: E402

SUBSCRIBERS = 10_000
REPEAT = 3
PREFIX = "bench-newsletter-"
BODY = """Spring is here, and so are longer evening hours on **Tuesdays and Thursdays**.

- New: 90-minute deep tissue sessions
- Our [booking page](/book/) now shows every free time for the next two months

Thank you for reading, and see you soon.
"""


def clear_run():
    """Forget what a fan-out wrote (deliveries, outbox rows, the issue), keep the subscribers."""
    Delivery.objects.filter(issue__subject__startswith=PREFIX).delete()
    OutgoingEmail.objects.filter(idempotency_key__startswith="newsletter:issue:").filter(
        newsletter_delivery__isnull=True
    ).delete()
    NewsletterIssue.objects.filter(subject__startswith=PREFIX).delete()


def seed():
    """10,000 confirmed subscribers, replacing an earlier run's."""
    clear_run()
    Subscriber.objects.filter(email__startswith=PREFIX).delete()
    now = timezone.now()
    Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"{PREFIX}{n}@example.com",
                status=Subscriber.Status.CONFIRMED,
                signed_up_at=now,
                confirmed_at=now,
                consent_text="Email me the newsletter.",
                consent_at=now,
            )
            for n in range(SUBSCRIBERS)
        ),
        batch_size=2000,
    )


def one_fan_out(published):
    """Seconds to write every copy of a fresh issue; (seconds, queries, copies written)."""
    clear_run()
    issue = services.save_issue(issue=NewsletterIssue(subject=f"{PREFIX}spring", body=BODY))
    services.start_sending_issue(issue=issue)
    published.clear()
    with CaptureQueriesContext(connection) as queries:
        start = clock.perf_counter()
        finished = services.fan_out_issue(issue_id=issue.pk, seconds=3600)
        elapsed = clock.perf_counter() - start
    assert finished, "the fan-out stopped before the end"
    return elapsed, len(queries), Delivery.objects.filter(issue=issue).count()


def main():
    database = connection.vendor
    print(
        f"newsletter fan-out to {SUBSCRIBERS:,} confirmed subscribers, "
        f"batches of {services.FAN_OUT_BATCH}; median and best of {REPEAT} runs"
    )
    print(
        f"{'case':<44} {'database':<10} {'copies':>7} {'published':>9} {'queries':>7} "
        f"{'median s':>8} {'best s':>7} {'per copy':>9}"
    )
    case = "render, write outbox + deliveries (no SMTP)"
    if not _django.database_reachable():
        host = connection.settings_dict.get("HOST") or "localhost"
        print(f"{case:<44} {database:<10} skipped: {database} at {host} is not reachable")
        return
    call_command("migrate", verbosity=0)
    # No task runs here, eagerly or not: the send tasks are counted, the fan-out called.
    app.conf.task_always_eager = False
    published = []
    mail.publish_sends = lambda ids, **kwargs: published.extend(ids)
    services.publish_fan_out = lambda task, issue_id: None
    seed()
    runs = [one_fan_out(published) for _ in range(REPEAT)]
    times = [seconds for seconds, _, _ in runs]
    _, queries, copies = runs[-1]
    median = statistics.median(times)
    print(
        f"{case:<44} {database:<10} {copies:>7,} {len(published):>9,} {queries:>7} "
        f"{median:>8.2f} {min(times):>7.2f} {median / copies * 1e6:>7.0f}µs"
    )
    clear_run()


if __name__ == "__main__":
    main()
