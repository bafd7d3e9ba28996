"""Shared fixtures: the clinic's content, an author, articles, a staff user, the real worker."""

import email
import email.policy
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone

ROOT = Path(__file__).resolve().parent.parent
REAL_WORKER = os.environ.get("CLINIC_REAL_WORKER") == "1"


# Production's database timeouts, before _patient_database_waits below lengthens them for the
# suite; the tests of those timeouts (tests/clinic/test_database_outage.py) set these back.
PRODUCTION_STATEMENT_TIMEOUT = settings.DATABASE_STATEMENT_TIMEOUT
PRODUCTION_LOCK_TIMEOUT = settings.DATABASE_LOCK_TIMEOUT


@pytest.fixture(scope="session", autouse=True)
def _patient_database_waits():
    """The race tests pile up to 30 transactions on one row of a PostgreSQL that shares two
    cores with everything else: waiting seconds for a lock is what they test, not a fault.
    So the suite's connections allow a minute for a statement or a lock wait."""
    options = settings.DATABASES["default"].get("OPTIONS", {})
    if "options" in options:  # PostgreSQL (pass (b)): read at connect, no connection yet
        options["options"] = "-c statement_timeout=60000 -c lock_timeout=60000 " + (
            "-c idle_in_transaction_session_timeout=60000"
        )
        settings.DATABASE_STATEMENT_TIMEOUT = 60.0
        settings.DATABASE_LOCK_TIMEOUT = 60.0
    yield


@pytest.fixture(scope="session", autouse=True)
def _plain_static_files():
    # Tests read static files from the source folders; the hashed manifest is a build product.
    with override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Only the keys the site uses: on Redis a flush would also empty Celery's queue.
    from clinic.pagecache import bump_version
    from clinic.services import forget_clinic_profile

    forget_clinic_profile()
    bump_version()  # pages cached by an earlier test showed its rolled-back rows
    yield
    forget_clinic_profile()


@pytest.fixture(autouse=True)
def _media_in_tmp(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def clinic(db):
    from clinic.content import load_clinic_content

    return load_clinic_content()


@pytest.fixture
def seeded(clinic):
    """The clinic as `make run` loads it: profile, hours, the calf article, the schedule."""
    from articles.content import load_article_content
    from booking.content import load_booking_content

    load_article_content()
    load_booking_content()
    return clinic


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="staffer", password="a-long-staff-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def author(staff_user):
    from articles.models import Author

    return Author.objects.create(
        user=staff_user, display_name="Dana Reyes", credentials="LMT", bio="Treats sore backs."
    )


@pytest.fixture
def topic(db):
    from articles.models import Topic

    return Topic.objects.create(name="Low back pain", slug="low-back-pain")


@pytest.fixture
def make_article(author):
    """Build and save an article through the service; published an hour ago unless told."""
    from articles.models import Article
    from articles.services import save_article

    counter = iter(range(1, 100_000))

    def make(**fields):
        n = next(counter)
        topics = fields.pop("topics", [])
        values = {
            "title": f"Article {n}",
            "slug": f"article-{n}",
            "summary": f"Summary of article {n}.",
            "body": f"Body of article {n}.",
            "author": author,
            "status": Article.Status.PUBLISHED,
            "published_at": timezone.now() - timedelta(hours=1),
        }
        values.update(fields)
        article = save_article(article=Article(**values))
        if topics:
            article.topics.set(topics)
        return article

    return make


# --- pass (b): a real Celery worker against the test database -------------------------
@pytest.fixture(scope="session")
def mail_dir():
    path = Path(tempfile.mkdtemp(prefix="clinic-mail-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def worker_database_url():
    """DATABASE_URL for a worker process: the test database this session created."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{quote(db['USER'] or '', safe='')}{password}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def start_worker(*, queues, name, env, log):
    """Start a real `celery worker` (solo pool, its own process group) consuming `queues`,
    with `env` over this process's environment; return it once it answers a ping."""
    import signal

    from clinic.celery import app

    worker_env = {k: v for k, v in os.environ.items() if k != "EMAIL_URL"}
    worker_env.update({"DATABASE_URL": worker_database_url(), **env})
    command = [sys.executable, "-m", "celery", "-A", "clinic", "worker", "--pool=solo"]
    process = subprocess.Popen(
        [
            *command,
            *("-Q", ",".join(queues), "-n", name),
            *("--without-mingle", "--without-gossip", "-l", "info"),
        ],
        cwd=ROOT,
        env=worker_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so teardown ends all of it
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited at start; see {log.name}")
        if app.control.ping(destination=[name], timeout=0.5):
            return process
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"The Celery worker did not answer within 30 s; see {log.name}")


def stop_worker(process):
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, mail_dir):
    """A real `celery worker` process on the test database (pass (b) only)."""
    if not REAL_WORKER:
        yield None
        return
    from clinic.celery import app

    # Its own queues and name: nothing left in Redis by an earlier run, and no stray
    # worker from one, can take this session's tasks. It consumes both, as production does.
    queue = app.conf.task_default_queue = f"clinic-test-{uuid.uuid4().hex[:12]}"
    bulk_queue = app.conf.bulk_queue = f"{queue}-bulk"
    log = open(mail_dir.parent / f"{mail_dir.name}-worker.log", "w")  # noqa: SIM115
    process = start_worker(
        queues=[queue, bulk_queue],
        name=f"{queue}@localhost",
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            # Tasks the worker itself publishes (a newsletter's fan-out queues its sends)
            # go to this session's bulk queue too, not to a "bulk" nobody here consumes.
            "CELERY_BULK_QUEUE": bulk_queue,
            # Likewise for the default queue: a reminder the worker writes publishes here.
            "CELERY_DEFAULT_QUEUE": queue,
        },
        log=log,
    )
    yield process
    stop_worker(process)
    log.close()
    with app.connection_for_write() as broker:
        for each in (queue, bulk_queue):
            broker.default_channel.queue_delete(each)


def race(attempt, count=30):
    """Run attempt(i) in `count` threads released together by a barrier; return what each
    returned (or raised). Each thread closes its own database connection."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        try:
            barrier.wait()
            results[i] = attempt(i)
        except Exception as exc:  # recorded, so the test can say what happened
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wait_for(predicate, timeout=15.0, interval=0.1):
    """Poll `predicate` until it is truthy (the real worker runs in another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return predicate()


def visits_managed_from(text):
    """The appointments whose manage links `text` carries. A signed link holds the second it
    was signed in, so a test compares what a link opens, never its text with a fresh one."""
    import re

    from booking.links import appointment_for_token

    link = re.escape(settings.SITE_URL) + r"/(?:[a-z]{2}/)?book/manage/([^/\s\"]+)/"
    tokens = re.findall(link, text)
    return [appointment_for_token(token) for token in tokens]


@pytest.fixture
def delivered(request, mailoutbox):
    """Subjects of the emails really handed to the mail backend, in either pass.

    Pass (a) reads Django's locmem outbox; pass (b) starts the real worker and reads the
    files its file-based mail backend wrote. Waits up to 15 s for `expected` subjects.
    """
    if not REAL_WORKER:

        def subjects(expected=0):
            return [message.subject for message in mailoutbox]

        return subjects

    worker_mail_dir = request.getfixturevalue("mail_dir")
    request.getfixturevalue("celery_worker")
    for old in worker_mail_dir.glob("*.log"):
        old.unlink()

    def read():
        # The file backend writes each message followed by a line of 79 dashes.
        found = []
        for path in sorted(worker_mail_dir.glob("*.log")):
            for chunk in path.read_text().split("-" * 79):
                if chunk.strip():
                    message = email.message_from_string(chunk.lstrip(), policy=email.policy.default)
                    found.append(" ".join(str(message["Subject"]).split()))
        return found

    def subjects(expected=0):
        wait_for(lambda: len(read()) >= expected)
        return read()

    return subjects


@pytest.fixture
def broker_down(monkeypatch):
    """Within `with broker_down():` the broker cannot be reached.

    Pass (b) points the Celery app at a closed port, so kombu really fails to connect;
    pass (a) has no broker (tasks run eagerly), so publishing raises kombu's own error.
    """
    from contextlib import contextmanager

    from kombu.exceptions import OperationalError

    from clinic.celery import app
    from clinic.tasks import send_email_task

    def drop_pools():
        app._pool = None
        app.amqp._producer_pool = None

    @contextmanager
    def down():
        if REAL_WORKER:
            saved = app.conf.broker_url
            app.conf.broker_url = "redis://127.0.0.1:9/0"
            drop_pools()
            try:
                yield
            finally:
                app.conf.broker_url = saved
                drop_pools()
        else:

            def refuse(*args, **kwargs):
                raise OperationalError("Error 111 connecting to the broker. Connection refused.")

            with monkeypatch.context() as patch:
                patch.setattr(send_email_task, "apply_async", refuse)
                yield

    return down


# --- booking: the schedule's nouns ------------------------------------------------------
@pytest.fixture(autouse=True)
def _generous_booking_rate_limit(settings):
    # The suite books far more often than a patient; the rate-limit test sets its own.
    settings.BOOKING_RATE_LIMIT = "100000/h"
    settings.NEWSLETTER_RATE_LIMIT = "100000/h"
    settings.NEWSLETTER_SIGNUP_SECONDS = 0  # the timing test sets its own floor


@pytest.fixture(autouse=True)
def _password_only_admin(settings):
    # Tests sign staff in with force_login (no second factor), as on the embedded default,
    # whatever DEBUG was at import; tests/clinic/test_staff_accounts.py turns 2FA on itself.
    settings.STAFF_REQUIRE_2FA = False


@pytest.fixture
def booking_rules(db):
    from booking.models import BookingRules

    rules, _ = BookingRules.objects.update_or_create(
        pk=BookingRules.SINGLETON_PK,
        defaults={
            "slot_step_minutes": 30,
            "min_notice_minutes": 120,
            "max_days_ahead": 60,
            "cancel_cutoff_hours": 24,
            "cancellation_policy": "Tell us a day ahead if you cannot come.",
        },
    )
    # The migration's consent text, again after a transactional test emptied the tables.
    from booking.content import ensure_consent_text

    ensure_consent_text()
    return rules


@pytest.fixture
def service(db):
    from booking.models import Service

    service, _ = Service.objects.get_or_create(
        slug="massage-60",
        defaults={"name": "60-minute massage", "duration_minutes": 60, "buffer_minutes": 15},
    )
    return service


@pytest.fixture
def make_therapist(db, service):
    """A therapist offering `service`, working weekdays 09:00–12:00 and 13:00–17:00."""
    from datetime import time

    from booking.models import Therapist, WorkingHours

    counter = iter(range(1, 1000))

    def make(name=None, services=(service,), **fields):
        n = next(counter)
        therapist = Therapist.objects.create(
            name=name or f"Therapist {n}", slug=f"therapist-{n}", **fields
        )
        therapist.services.set(services)
        WorkingHours.objects.bulk_create(
            WorkingHours(therapist=therapist, weekday=day, opens=opens, closes=closes)
            for day in range(5)
            for opens, closes in [(time(9), time(12)), (time(13), time(17))]
        )
        return therapist

    return make


@pytest.fixture
def therapist(make_therapist):
    return make_therapist("Maria Lopez")


@pytest.fixture
def next_monday():
    """A Monday at least a week away, in the clinic's zone: bookable, and never a holiday."""
    today = timezone.localdate()
    return today + timedelta(days=7 + (7 - today.weekday()) % 7)


@pytest.fixture
def still_clock():
    """Time stands still (at the real now) for the test: a time one page offers is still
    offered on the next, however long the machine takes between the two requests."""
    import time_machine

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def at(next_monday):
    """at(hour, minute=0, days=0): an aware datetime on next_monday (+ days) in the zone."""
    from datetime import datetime, time

    def make(hour, minute=0, days=0):
        day = next_monday + timedelta(days=days)
        return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_default_timezone())

    return make


@pytest.fixture
def patient():
    from booking.services import PatientDetails

    return PatientDetails(name="Pat Example", email="pat@example.com", phone="+12095550142")


@pytest.fixture
def appointment(booking_rules, clinic, therapist, service, at, patient):
    """Pat's confirmed appointment with Maria, next Monday 10:00."""
    from booking.services import book_appointment

    return book_appointment(service=service, therapist=therapist, start=at(10), patient=patient)


def wsgi_get(path, **headers):
    """(status, headers as a dict, body, whether Django's request handling ran) of one GET
    through the site's WSGI application."""
    from django.core.signals import request_started
    from django.db import close_old_connections
    from django.test import RequestFactory

    from clinic.wsgi import application

    environ = dict(RequestFactory(**headers).get(path).environ)
    handled = []
    original = application.get_response

    def get_response(request):
        handled.append(request)
        return original(request)

    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = status
        answer["headers"] = response_headers

    application.get_response = get_response
    # As Django's test client does: the test's connection must outlive the request.
    request_started.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        del application.get_response
    return answer["status"], dict(answer["headers"]), body, bool(handled)
