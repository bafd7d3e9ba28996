"""The schedule's version: a token that every write to what decides free times replaces.

Cached availability (booking.availability) and cached booking pages (clinic.pagecache) are
keyed on this token, so they can never show a time as free after a write that took it.

The token is replaced by **database triggers** on every table in SCHEDULE_MODELS, in the
same transaction as the write. Not signals, and not one service everything must go through:
a queryset's .update()/.delete(), bulk_create, the admin, a data migration, raw SQL or a
psql session (TRUNCATE included) all bypass Python, but none of them bypasses a trigger.
Both databases run them: SQLite as plain AFTER triggers (it has one writer at a time
anyway); PostgreSQL as deferred constraint triggers, which run at COMMIT, so the single
version row is locked only for the instant of the commit. An immediate trigger would hold
that row from a transaction's first write to its end, serialising every booking behind the
slowest one and inviting deadlocks with the services' own row locks.

Deferred means a transaction does not see its own bump, so nothing read inside a
transaction may come from the cache (read_token() answers None there): the booking
service re-checks under its lock straight from the tables, as before.

The token is random, not a counter: a database emptied and filled again (a test run, a
restore) never meets an old token that a cache still holds. No row (emptied tables) also
reads as None, and None never caches anything.

To make another table decide free times, add its model to SCHEDULE_MODELS: `migrate`
installs the triggers (install_triggers runs after every migrate), and
tests/booking/test_schedule_version.py writes to every listed table. booking_occupancy (no
model) needs no entry: its own triggers fill it from appointments and holds, whose writes
bump the version already.
"""

import logging

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)

# Every model whose rows change which times are free. THE list: add new ones here.
SCHEDULE_MODELS = (
    "booking.Appointment",
    "booking.Hold",
    "booking.WorkingHours",
    "booking.TimeOff",
    "booking.BookingRules",
    "booking.Room",
    "booking.RoomClosure",
    "clinic.Closure",
)

VERSION_TABLE = "booking_scheduleversion"
_FUNCTION = "booking_bump_schedule_version"
_TRIGGER = "schedule_version"
_EVENTS = ("INSERT", "UPDATE", "DELETE")


def read_token(using=DEFAULT_DB_ALIAS):
    """The current token, or None: inside a transaction (it may have written what the token
    does not show yet), or when the version row does not exist."""
    connection = connections[using]
    if connection.in_atomic_block:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM booking_scheduleversion WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else None


def _tables(apps):
    return [apps.get_model(label)._meta.db_table for label in SCHEDULE_MODELS]


# The SQL below is built from this module's constants and the models' table names only.
_RANDOM = {"postgresql": "md5(random()::text || clock_timestamp()::text)"}


def _postgresql(tables):
    yield (
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger AS $$ BEGIN "  # noqa: S608  # nosec B608
        f"INSERT INTO {VERSION_TABLE} (id, token) VALUES (1, {_RANDOM['postgresql']}) "
        "ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token; "
        "RETURN NULL; END $$ LANGUAGE plpgsql"
    )
    for table in tables:
        yield f'DROP TRIGGER IF EXISTS {_TRIGGER} ON "{table}"'
        yield (
            f'CREATE CONSTRAINT TRIGGER {_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()"
        )
        # TRUNCATE fires no row trigger, and a constraint trigger cannot be per statement:
        # a plain one (TRUNCATE locks the whole table anyway, so running now costs nothing).
        yield f'DROP TRIGGER IF EXISTS {_TRIGGER}_truncate ON "{table}"'
        yield (
            f'CREATE TRIGGER {_TRIGGER}_truncate AFTER TRUNCATE ON "{table}" '
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )


def _sqlite(tables):
    for table in tables:
        for event in _EVENTS:
            name = f"{_TRIGGER}_{table}_{event.lower()}"
            yield f'DROP TRIGGER IF EXISTS "{name}"'
            yield (
                f'CREATE TRIGGER "{name}" AFTER {event} ON "{table}" FOR EACH ROW BEGIN '  # noqa: S608  # nosec B608
                f"INSERT INTO {VERSION_TABLE} (id, token) VALUES (1, lower(hex(randomblob(16)))) "
                "ON CONFLICT (id) DO UPDATE SET token = excluded.token; END"
            )


def install_triggers(*, using=DEFAULT_DB_ALIAS, apps=global_apps, **kwargs):
    """(Re)install the triggers on every SCHEDULE_MODELS table and start a new version.

    Idempotent; runs after every `migrate` (post_migrate), so a model added to the list gets
    its triggers with the migration that creates its table, and nothing cached before a
    migration survives it.
    """
    connection = connections[using]
    try:
        tables = _tables(apps)
    except LookupError:  # migrating backwards, or the app is not migrated yet
        return
    existing = set(connection.introspection.table_names())
    if VERSION_TABLE not in existing or not set(tables) <= existing:
        return
    statements = {"postgresql": _postgresql, "sqlite": _sqlite}.get(connection.vendor)
    if statements is None:
        logger.warning("No schedule-version triggers for %s: availability is not cached", using)
        return
    with connection.cursor() as cursor:
        for statement in statements(tables):
            cursor.execute(statement)
        cursor.execute("DELETE FROM booking_scheduleversion")
        cursor.execute(
            "INSERT INTO booking_scheduleversion (id, token) VALUES (1, %s)",
            [_new_token()],
        )


def _new_token():
    import secrets

    return secrets.token_hex(16)
