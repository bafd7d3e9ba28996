"""Start-up with a wrong setting stops with one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(**environment):
    unset = ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "CELERY_BROKER_URL", "SITE_URL")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_without_secret_key_stops_with_one_line():
    result = start(DEBUG="false")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: SECRET_KEY must be set when DEBUG is off "
        "(or set DEBUG=true for development)"
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "not a url at all"),
        ("DATABASE_URL", "mysqlx://nobody@nowhere/db"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/"),
        ("REDIS_URL", "http://127.0.0.1:6379/0"),
        ("SITE_URL", "clinic.example"),
        ("DEBUG", "perhaps"),
        ("CONN_MAX_AGE", "forever"),
        ("OUTBOX_MAX_ATTEMPTS", "lots"),
        ("ALLOWED_HOSTS", ","),
    ],
)
def test_malformed_setting_stops_start_up_naming_the_variable(variable, value):
    result = start(
        **{"SECRET_KEY": "x" * 50, "SITE_URL": "https://clinic.example", variable: value}
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {variable} ")
    assert "Traceback" not in result.stderr


def test_production_without_a_public_address_stops_start_up():
    result = start(SECRET_KEY="x" * 50, DEBUG="off")
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Configuration error: SITE_URL must be set")


def test_a_database_url_means_production_unless_debug_is_asked_for():
    result = start(DATABASE_URL="sqlite:////tmp/clinic-settings-test.sqlite3")
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Configuration error: SECRET_KEY must be set")


def test_embedded_default_starts_with_nothing_set():
    result = start()
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
