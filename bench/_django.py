"""The start every bench script shares: Django with DEBUG off on the database it is given.

With no DATABASE_URL the scripts use SQLite in a temporary file; with one they use it, and
`database_reachable` creates a missing PostgreSQL database first.
"""

import os
import sys
import tempfile
from pathlib import Path


def setup(**environment):
    """Configure the environment (plus `environment`) and start Django."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("SITE_URL", "http://127.0.0.1:8000")
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinic.settings"
    os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp())
    os.environ.update(environment)

    import django

    django.setup()


def database_reachable():
    """Whether the database answers; a missing PostgreSQL database is created first."""
    from django.db import OperationalError, connection

    try:
        connection.ensure_connection()
        return True
    except OperationalError as exc:
        if connection.vendor != "postgresql" or "does not exist" not in str(exc):
            return False
    # The server answers but has no such database yet (the maintenance database does exist).
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    from clinic.db.base import forget_failures

    forget_failures(connection.alias)  # the failed try above set the breaker
    connection.ensure_connection()
    return True
