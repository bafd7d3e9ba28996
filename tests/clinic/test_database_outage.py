"""PostgreSQL down, hung or too slow: a 503 "please call" page within 5 s, nothing typed lost.

"Hung" is a listener that accepts connections and never answers (a paused PostgreSQL, as
SIGSTOP leaves it, or a machine that froze); "down" is a closed port. The site is pointed
at them by replacing the default connection with one built as settings.py builds it for
PostgreSQL, so these run in both passes. In pass (b) a real PostgreSQL also runs a query
past statement_timeout (pg_sleep), waits for a lock past lock_timeout, and goes silent under
an open connection (a proxy that stops forwarding).
"""

import contextlib
import html
import json
import re
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.utils import load_backend
from django.test import Client

from booking.models import Appointment
from clinic import services as clinic_services
from clinic.db import base as guarded
from tests.booking.test_views import details_url, form_data
from tests.clinic.test_resilience import SilentListener, closed_port
from tests.conftest import PRODUCTION_LOCK_TIMEOUT, PRODUCTION_STATEMENT_TIMEOUT

# What the issue promises a patient: an answer within this, whatever the database does.
PROMISE_SECONDS = 5.0
PHONE = "(209) 555-0100"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a real PostgreSQL (pass (b))"
)


def postgres_settings(host, port):
    """The default connection's settings as settings.py makes them for PostgreSQL, elsewhere."""
    current = connections["default"].settings_dict
    if current["ENGINE"] != "django.db.backends.sqlite3":  # pass (b): the real thing
        base = {**current, "OPTIONS": dict(current["OPTIONS"])}
    else:  # pass (a): what settings.py would make of postgres://clinic@host/clinic
        base = {
            **current,
            "ENGINE": "clinic.db",
            "NAME": "clinic",
            "USER": "clinic",
            "PASSWORD": "",
            "OPTIONS": dict(settings.POSTGRES_OPTIONS),
        }
    return {**base, "HOST": host, "PORT": str(port), "CONN_MAX_AGE": 60}


class Swapped:
    """The site's default database replaced, for this thread, by one at host:port."""

    def __init__(self, host, port, name=None):
        settings_dict = postgres_settings(host, port)
        if name:
            settings_dict["NAME"] = name
        backend = load_backend(settings_dict["ENGINE"])
        self.original = connections["default"]
        self.wrapper = backend.DatabaseWrapper(settings_dict, alias="default")
        guarded._broken_until.clear()
        connections["default"] = self.wrapper

    def restore(self):
        self.wrapper.close()
        connections["default"] = self.original
        guarded._broken_until.clear()


@pytest.fixture
def profile_seen(clinic):
    """A page was served while the database was up, so the clinic's phone is remembered."""
    clinic.phone = PHONE
    clinic.save()
    clinic_services.forget_clinic_profile()
    clinic_services.get_clinic_profile()
    yield clinic
    clinic_services._last_known = None


@pytest.fixture(params=["hung", "down"])
def database_outage(request, profile_seen):
    listener = SilentListener() if request.param == "hung" else None
    port = listener.port if listener else closed_port()
    swapped = Swapped("127.0.0.1", port)
    swapped.listener = listener
    yield swapped
    swapped.restore()
    if listener:
        listener.stop()


def timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


def assert_please_call(response, seconds, *, heading="We can't take bookings online right now"):
    assert response.status_code == 503, response.content[:300]
    assert seconds < PROMISE_SECONDS
    assert int(response["Retry-After"]) > 0
    assert "no-store" in response["Cache-Control"]
    page = html.unescape(response.content.decode())
    assert heading in page
    assert PHONE in page
    return page


@pytest.mark.django_db
def test_booking_pages_answer_503_please_call_in_either_language(database_outage):
    response, seconds = timed(Client().get, "/book/")
    assert_please_call(response, seconds)
    response, seconds = timed(Client().get, "/es/book/")
    page = assert_please_call(
        response, seconds, heading="Ahora no podemos aceptar reservas en línea"
    )
    assert 'lang="es"' in page


@pytest.mark.django_db
def test_after_one_timeout_the_next_requests_do_not_wait_for_the_database_again(
    database_outage,
):
    if database_outage.listener is None:
        pytest.skip("a refused connection costs nothing to retry")
    Client().get("/book/")
    assert len(database_outage.listener.accepted) == 1
    for path in ["/book/", "/book/massage-60/", "/es/book/"]:
        assert Client().get(path).status_code == 503
    # The breaker held them: no second connection was even tried.
    assert len(database_outage.listener.accepted) == 1


@pytest.mark.django_db
def test_cached_pages_are_still_served_while_the_database_is_away(profile_seen, settings):
    settings.PAGE_CACHE_SECONDS = 600
    visitor = Client()
    for path in ["/", "/articles/"]:
        visitor.get(path)
        assert visitor.get(path)["X-Page-Cache"] == "hit"
    listener = SilentListener()
    swapped = Swapped("127.0.0.1", listener.port)
    try:
        for path in ["/", "/articles/"]:
            response, seconds = timed(Client().get, path)
            assert response.status_code == 200 and response["X-Page-Cache"] == "hit"
        assert listener.accepted == []  # served without even trying the database
    finally:
        swapped.restore()
        listener.stop()


@pytest.mark.django_db
def test_health_check_names_the_database_within_its_bound(database_outage):
    response, seconds = timed(Client().get, "/healthz")
    assert response.status_code == 503
    assert seconds < PROMISE_SECONDS
    assert json.loads(response.content)["checks"]["database"] == "down"


def typed_back(page):
    """The fields a 503 page's "Try again" form sends, as {name: value}."""
    page = page[page.index("<main") :]
    page = page[page.index('<form method="post"') : page.index("</form>")]
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


@pytest.mark.django_db
def test_a_booking_post_comes_back_with_everything_typed_and_goes_through_later(
    booking_rules, therapist, at, profile_seen
):
    visitor = Client()
    url = details_url(therapist, at(10))
    data = form_data(
        visitor,
        url,
        name='Sam "Typed" <b>',
        notes="Left calf\nstill tight",
        intake_pregnant="yes",
    )
    listener = SilentListener()
    swapped = Swapped("127.0.0.1", listener.port)
    try:
        response, seconds = timed(visitor.post, url, data)
        page = response.content.decode()
        assert_please_call(response, seconds)
    finally:
        swapped.restore()
        listener.stop()
    kept = typed_back(page)
    assert {k: v for k, v in kept.items() if k != "csrfmiddlewaretoken"} == data
    assert f'action="{url}"' in page
    # Back up: the same button sends it again and the booking is made, once.
    again = visitor.post(url, kept)
    assert again.status_code == 303
    assert Appointment.objects.get().patient_name == 'Sam "Typed" <b>'


@pytest.mark.django_db
def test_a_newsletter_sign_up_comes_back_with_the_address_kept(database_outage):
    data = {"email": "pat+news@example.com", "page": "/articles/", "website": ""}
    response, seconds = timed(Client().post, "/newsletter/subscribe/", data)
    page = assert_please_call(response, seconds)
    assert typed_back(response.content.decode())["email"] == "pat+news@example.com"
    assert "pat+news@example.com" in page


@pytest.mark.django_db
def test_with_no_copy_of_the_profile_the_phone_comes_from_the_setting(clinic, settings):
    settings.CLINIC_PHONE_FALLBACK = PHONE
    clinic_services.forget_clinic_profile()
    clinic_services._last_known = None
    from django.core.cache import cache

    cache.delete(clinic_services.LAST_KNOWN_CACHE_KEY)
    swapped = Swapped("127.0.0.1", closed_port())
    try:
        response, seconds = timed(Client().get, "/book/")
    finally:
        swapped.restore()
    page = assert_please_call(response, seconds)
    # Nothing is known of the hours or the address: no empty headings stand in for them.
    assert "Opening hours" not in page and ">Contact<" not in page


# --- a real PostgreSQL: too slow, locked, silent --------------------------------------------
@pytest.fixture
def production_timeouts(settings):
    """This thread's connection with production's statement and lock timeouts (the suite
    lengthens them for its race tests: tests/conftest.py)."""
    settings.DATABASE_STATEMENT_TIMEOUT = PRODUCTION_STATEMENT_TIMEOUT
    settings.DATABASE_LOCK_TIMEOUT = PRODUCTION_LOCK_TIMEOUT
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false)",
            [
                f"{round(PRODUCTION_STATEMENT_TIMEOUT * 1000)}",
                f"{round(PRODUCTION_LOCK_TIMEOUT * 1000)}",
            ],
        )
    yield
    connection.close()  # the next test's connection starts with the suite's settings again


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_query_past_statement_timeout_answers_503(profile_seen, production_timeouts):
    def slow(execute, sql, params, many, context):
        execute("SELECT pg_sleep(30)", None, False, context)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(slow):
            response, seconds = timed(Client().get, "/book/")
        assert_please_call(response, seconds)
        assert seconds >= PRODUCTION_STATEMENT_TIMEOUT  # the server's timeout ended it
    finally:
        guarded._broken_until.clear()
    assert Client().get("/book/").status_code == 200  # and the site is back at once after


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_lock_timeout_answers_503_with_the_booking_kept(
    booking_rules, therapist, at, profile_seen, production_timeouts
):
    import psycopg2

    visitor = Client()
    url = details_url(therapist, at(10))
    data = form_data(visitor, url, name="Lockie Waits")
    db = connection.settings_dict
    holder = psycopg2.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
    )
    try:
        with holder.cursor() as cursor:  # staff's long edit, a stuck job: the row stays locked
            cursor.execute(
                "SELECT id FROM booking_therapist WHERE id = %s FOR UPDATE", [therapist.pk]
            )
        response, seconds = timed(visitor.post, url, data)
        # A row held past lock_timeout is someone else's write, not an outage: the lock
        # helper's "Busy, please try again" (503), the details form still filled in.
        page = assert_please_call(response, seconds, heading="Busy, please try again")
        assert seconds >= PRODUCTION_LOCK_TIMEOUT
        assert 'value="Lockie Waits"' in page
    finally:
        holder.rollback()
        holder.close()
        guarded._broken_until.clear()
    assert not Appointment.objects.exists()
    assert visitor.post(url, data).status_code == 303


class PausableProxy:
    """Forwards TCP to PostgreSQL until paused; then holds every byte, both ways: what a
    client sees of a PostgreSQL stopped with SIGSTOP (its kernel still accepts and ACKs)."""

    def __init__(self, host, port):
        self.upstream = (host, int(port))
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.paused = threading.Event()
        self.stopping = threading.Event()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:  # stopped
                return
            self.accepted += 1
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(65536):
                while self.paused.is_set() and not self.stopping.is_set():
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass
        # One side hung up: so does the other, and PostgreSQL ends that session.
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self):
        self.stopping.set()
        for sock in [self.server, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_database_that_goes_silent_under_an_open_connection_answers_503(
    profile_seen, production_timeouts, settings
):
    # /book/ is a cached page for anonymous visitors: here it stands for a view's own queries.
    settings.PAGE_CACHE_SECONDS = 0
    db = connection.settings_dict
    proxy = PausableProxy(db["HOST"] or "127.0.0.1", db["PORT"] or 5432)
    swapped = Swapped("127.0.0.1", proxy.port, name=db["NAME"])
    try:
        assert Client().get("/book/").status_code == 200  # the connection is open and kept
        assert proxy.accepted == 1
        proxy.paused.set()
        response, seconds = timed(Client().get, "/book/")
        assert_please_call(response, seconds)
        response, seconds = timed(Client().get, "/es/book/")
        assert response.status_code == 503 and seconds < 1.0 + PROMISE_SECONDS / 5
        proxy.paused.clear()
        guarded._broken_until.clear()  # as five seconds later
        assert Client().get("/book/").status_code == 200  # back by itself
    finally:
        proxy.paused.clear()
        swapped.restore()
        proxy.stop()
