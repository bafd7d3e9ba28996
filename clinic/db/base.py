"""Django's PostgreSQL backend with a client-side deadline and a breaker (see clinic.db)."""

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, OperationalError
from django.db.backends.postgresql import base as postgresql

from . import database_deadline, deadline_override

Database = postgresql.Database
logger = logging.getLogger(__name__)

# How long a process leaves a database alone after it could not be reached or timed out.
BREAKER_SECONDS = 5.0
# The client's deadline follows the server's statement_timeout by this much, so the server
# (which leaves the connection usable) normally ends a slow query first.
DEADLINE_MARGIN = 0.5


class _Watchdog:
    """One thread per process that cuts the connection of a call past its deadline.

    Cutting is a shutdown() of the connection's socket: the call blocked in libpq wakes
    with "server closed the connection" at once, whatever the server is doing. Arming and
    disarming are a dict write under a lock, so every query can afford them.
    """

    TICK = 0.1

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._lock = threading.Lock()
        self._armed = {}
        self._fired = set()
        self._next = 0
        self._thread = None

    def arm(self, fd, seconds):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="database-deadline", daemon=True
                )
                self._thread.start()
            self._next += 1
            self._armed[self._next] = (time.monotonic() + seconds, fd)
            return self._next

    def disarm(self, token):
        """Stop watching; True when the deadline passed and the connection was cut."""
        with self._lock:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self):
        lock = self._lock
        while True:
            time.sleep(self.TICK)
            with lock:
                now = time.monotonic()
                for token, (deadline, fd) in list(self._armed.items()):
                    if deadline <= now:
                        # Under the lock, so the fd cannot be closed and reused meanwhile:
                        # its owner is still waiting in the call we are cutting.
                        del self._armed[token]
                        self._fired.add(token)
                        _cut(fd)


def _cut(fd):
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


_watchdog = _Watchdog()
# alias -> monotonic time before which this process does not try that database again.
_broken_until = {}


def forget_failures(alias):
    """Try `alias` again at once: what made it fail is known to be fixed (a database that
    was missing has just been created)."""
    _broken_until.pop(alias, None)


def _statement_seconds():
    return getattr(settings, "DATABASE_STATEMENT_TIMEOUT", 0) or 0


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Outermost of the execute wrappers: every statement run through Django is bounded.
        self.execute_wrappers.insert(0, self._bounded_execute)

    # --- the breaker ------------------------------------------------------------------
    def _trip(self, why):
        _broken_until[self.alias] = time.monotonic() + BREAKER_SECONDS
        logger.warning(
            "Database %s unavailable (%s); not trying it again for %.0f s",
            self.alias,
            why,
            BREAKER_SECONDS,
        )

    def connect(self):
        until = _broken_until.get(self.alias, 0)
        if time.monotonic() < until:
            raise Database.OperationalError(
                f"database {self.alias!r} was unavailable moments ago; next try in "
                f"{until - time.monotonic():.1f} s"
            )
        try:
            super().connect()
        except Database.Error as exc:
            self._trip(f"could not connect: {exc.__class__.__name__}")
            raise

    # --- the deadline -----------------------------------------------------------------
    def _deadline_seconds(self):
        override = deadline_override()
        if override is not None:
            return override
        statement = _statement_seconds()
        return statement + DEADLINE_MARGIN if statement else None

    @contextmanager
    def _deadline(self, what, seconds=None):
        if seconds is None:
            seconds = self._deadline_seconds()
        raw = self.connection
        if not seconds or raw is None or raw.closed:
            yield
            return
        token = _watchdog.arm(raw.fileno(), seconds)
        try:
            yield
        except Exception as exc:
            if _watchdog.disarm(token):
                self._cut_off(what, seconds)
                raise OperationalError(
                    f"the database did not answer {what} within {seconds:g} s"
                ) from exc
            raise
        else:
            if _watchdog.disarm(token):  # the answer came as the cut did: the link is gone
                self._cut_off(what, seconds)

    def _cut_off(self, what, seconds):
        self._forget_link()
        self._trip(f"no answer to {what} within {seconds:g} s")

    def _forget_link(self):
        # The next use finds the connection unusable and replaces it (once the breaker lets
        # it), even within the same request, rather than failing on a dead socket.
        self.errors_occurred = True
        self.health_check_done = False

    def _bounded_execute(self, execute, sql, params, many, context):
        try:
            with self._deadline("a statement"):
                return execute(sql, params, many, context)
        except DatabaseError as exc:
            # A statement past statement_timeout or lock_timeout leaves the server answering
            # (and its connection usable): that request gets the 503, the next ones try again.
            cause = exc.__cause__
            if isinstance(cause, Database.OperationalError) and self._link_lost():
                self._forget_link()
                self._trip("the connection was lost")
            raise

    def _link_lost(self):
        return self.connection is None or bool(self.connection.closed)

    def _commit(self):
        with self._deadline("a commit"):
            return super()._commit()

    def _rollback(self):
        with self._deadline("a rollback"):
            return super()._rollback()

    @contextmanager
    def _nodb_cursor(self):
        # Creating and dropping databases (the test run, `make serve`) may rightly wait for
        # other sessions to leave: no limit on that maintenance connection.
        with database_deadline(0), super()._nodb_cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("SET lock_timeout = 0")
            yield cursor

    def is_usable(self):
        # A live server answers SELECT 1 on an open connection in a millisecond; one that
        # takes a second is not going to serve this request (and the breaker trips).
        try:
            with self._deadline("a health check", min(self._deadline_seconds() or 1.0, 1.0)):
                return super().is_usable()
        except DatabaseError:
            return False
