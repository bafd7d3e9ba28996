"""The one way to take a row lock: `lock(queryset)`.

A service that re-checks before it writes (is the time still free? is the issue still a
draft?) locks the rows it decides on with SELECT ... FOR UPDATE, inside its own transaction.
That rule is enforced here, not only written in docstrings:
- outside an atomic block a lock would end with the statement, so the call raises
  NotInTransaction (a programming error, never a patient's problem);
- on PostgreSQL the wait is bounded (`SET LOCAL lock_timeout`, settings.DATABASE_LOCK_TIMEOUT,
  said again for the transaction whatever the connection was opened with),
  so a stuck transaction elsewhere does not hold a patient's request until the server gives
  up: the wait ends in Busy, which the pages answer with "busy, please try again" (503) and
  the user's input kept.
SQLite has no row locks: its IMMEDIATE transactions queue writers at BEGIN instead.
The shape is pretix's base/services/locking.py.
"""

from django.conf import settings
from django.db import OperationalError, connections

# PostgreSQL's SQLSTATE for "could not obtain lock" (lock_timeout, NOWAIT).
LOCK_NOT_AVAILABLE = "55P03"


class NotInTransaction(RuntimeError):
    """A lock was asked for outside transaction.atomic(): it would protect nothing."""


class Busy(Exception):
    """Someone else held the rows for longer than the lock timeout: try again in a moment."""


def require_transaction(using="default"):
    """Raise NotInTransaction unless inside transaction.atomic(): for writes that must
    commit or roll back with their caller's (an email with the change it tells about)."""
    if not connections[using].in_atomic_block:
        raise NotInTransaction("This write must run inside its caller's transaction.atomic().")


def lock(queryset):
    """The rows of `queryset`, locked FOR UPDATE until the surrounding transaction ends.

    Must run inside transaction.atomic() (NotInTransaction otherwise). Waits at most
    settings.DATABASE_LOCK_TIMEOUT on PostgreSQL, then raises Busy; the transaction is then
    unusable, so let Busy leave the atomic block. Returns a list, evaluated here, so the
    wait happens (and is turned into Busy) inside this function.
    """
    connection = connections[queryset.db]
    if not connection.in_atomic_block:
        raise NotInTransaction(
            f"Locking {queryset.model.__name__} rows needs transaction.atomic() around it."
        )
    if connection.vendor == "postgresql" and settings.DATABASE_LOCK_TIMEOUT:
        milliseconds = max(1, round(settings.DATABASE_LOCK_TIMEOUT * 1000))
        with connection.cursor() as cursor:
            # set_config(..., true) is SET LOCAL: it ends with this transaction.
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
    try:
        return list(queryset.select_for_update())
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE:
            raise Busy from exc
        raise
