"""`make backup` and `make restore`: a PostgreSQL database survives the round trip whole.

Runs in the PostgreSQL pass: it makes two scratch databases on the test server, fills one
with the clinic's content and a patient, backs it up with `make backup`, restores it into
the other with `make restore` (empty, then over changed data) and compares every table.
"""

import os
import stat
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="make backup and restore are for PostgreSQL"
)

FILL = """
from datetime import timedelta
from django.utils import timezone
from booking.models import Appointment, Service, Therapist
from newsletter.models import Subscriber

service, therapist = Service.objects.first(), Therapist.objects.first()
start = timezone.now().replace(microsecond=0) + timedelta(days=3)
Appointment.objects.create(
    therapist=therapist, service=service, starts_at=start,
    ends_at=start + service.duration, blocked_until=start + service.duration + service.buffer,
    patient_name="Zoë O'Brien", patient_email="zoe@example.com", patient_phone="+12095550142",
    notes="Línea 1\\nLine 2", consented_to_policy_at=start, intake_pregnant=True,
)
Subscriber.objects.create(email="zoe@example.com")
"""


def server_url(name):
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    user = quote(db["USER"] or "postgres", safe="")
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@contextmanager
def cursor_on(url, *, autocommit=False):
    """A cursor on the database at `url`; committed, then the connection closed."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = autocommit
        with conn.cursor() as cursor:
            yield cursor
        if not autocommit:
            conn.commit()
    finally:
        conn.close()


def admin(sql):
    """Run `sql` on the server's maintenance database, outside any transaction."""
    with cursor_on(server_url("postgres"), autocommit=True) as cursor:
        cursor.execute(sql)


def table_rows(url):
    """{table: every row, sorted} for each table in the database's public schema."""
    with cursor_on(url) as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        tables = [name for (name,) in cursor.fetchall()]
        contents = {}
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')
            contents[table] = sorted(map(repr, cursor.fetchall()))
    return contents


def manage(url, *command):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=url, SECRET_KEY="x" * 50, SITE_URL="http://127.0.0.1:8000")
    subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=300
    )


def make(target, **variables):
    return subprocess.run(
        ["make", "--no-print-directory", target, *(f"{k}={v}" for k, v in variables.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def new_database():
    name = f"clinic_backup_{uuid.uuid4().hex[:10]}"
    admin(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name):
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch():
    """scratch(): a new empty database on the test server, dropped at the end."""
    names = []

    def create():
        names.append(new_database())
        return server_url(names[-1])

    yield create
    for name in names:
        drop_database(name)


@pytest.fixture(scope="module")
def source():
    """A scratch database as a clinic's: migrated, the content loaded, a patient booked.

    Shared by this module's tests, which only read it.
    """
    name = new_database()
    try:
        url = server_url(name)
        manage(url, "migrate", "--noinput", "-v0")
        manage(url, "load_content")
        manage(url, "shell", "-c", FILL)
        yield url
    finally:
        drop_database(name)


def test_a_backup_restores_every_row_into_an_empty_database(source, scratch, tmp_path):
    backup = tmp_path / "clinic.dump"
    result = make("backup", DATABASE_URL=source, BACKUP=backup)
    assert result.returncode == 0, result.stderr
    assert f"Backed up to {backup}" in result.stdout
    # Patients' data: readable by its owner only.
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "postgres://" not in result.stdout + result.stderr  # no URL (or password) echoed

    target = scratch()
    result = make("restore", DATABASE_URL=target, BACKUP=backup)
    assert result.returncode == 0, result.stderr

    original = table_rows(source)
    assert any("Zoë O'Brien" in row for row in original["booking_appointment"])
    assert table_rows(target) == original


def test_restoring_over_changed_data_brings_back_the_backup_exactly(source, scratch, tmp_path):
    backup = tmp_path / "clinic.dump"
    assert make("backup", DATABASE_URL=source, BACKUP=backup).returncode == 0
    target = scratch()
    assert make("restore", DATABASE_URL=target, BACKUP=backup).returncode == 0
    with cursor_on(target) as cursor:
        cursor.execute("DELETE FROM booking_appointment")
        cursor.execute("UPDATE newsletter_subscriber SET email = 'someone@else.example'")

    result = make("restore", DATABASE_URL=target, BACKUP=backup)

    assert result.returncode == 0, result.stderr
    assert table_rows(target) == table_rows(source)


def test_a_backup_without_a_path_goes_under_var_backups(source):
    before = set((ROOT / "var" / "backups").glob("*.dump"))
    result = make("backup", DATABASE_URL=source)
    try:
        assert result.returncode == 0, result.stderr
        made = set((ROOT / "var" / "backups").glob("*.dump")) - before
        assert len(made) == 1
        (path,) = made
        assert path.name.startswith("clinic-") and path.stat().st_size > 0
    finally:
        for path in set((ROOT / "var" / "backups").glob("*.dump")) - before:
            path.unlink()


def test_restore_without_a_file_or_database_changes_nothing(source, tmp_path):
    rows = table_rows(source)
    missing = make("restore", DATABASE_URL=source)
    assert missing.returncode != 0 and "name the file" in missing.stderr
    absent = make("restore", DATABASE_URL=source, BACKUP=tmp_path / "nothing.dump")
    assert absent.returncode != 0 and "there is no file" in absent.stderr
    sqlite = make("backup", DATABASE_URL="sqlite:///var/db.sqlite3")
    assert sqlite.returncode != 0 and "PostgreSQL" in sqlite.stderr
    assert table_rows(source) == rows
