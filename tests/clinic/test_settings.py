"""Start-up with a wrong setting stops with one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(*command, **environment):
    """Run manage.py (`check` unless told) with only `environment` set on top of the shell's."""
    unset = (
        *("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "CELERY_BROKER_URL", "SITE_URL"),
        *("SECRET_KEY_FALLBACKS", "TIME_ZONE", "CACHE_URL", "MEDIA_S3_BUCKET"),
        *("MEDIA_STORAGE_BACKEND", "MEDIA_S3_REDIRECT_PUBLIC"),
    )
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", *(command or ["check"])],
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
        ("CACHE_URL", "memcached://127.0.0.1:11211"),
        ("OUTBOX_SEND_LEASE_SECONDS", "0"),
        ("MEDIA_S3_ENDPOINT_URL", "s3.example.net"),
        ("MEDIA_S3_SIGNED_SECONDS", "5"),
        ("MEDIA_S3_REDIRECT_PUBLIC", "true"),
        ("SITE_URL", "clinic.example"),
        ("DEBUG", "perhaps"),
        ("CONN_MAX_AGE", "forever"),
        ("OUTBOX_MAX_ATTEMPTS", "lots"),
        ("ALLOWED_HOSTS", ","),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("TIME_ZONE", "../../etc/passwd"),
        ("BOOKING_RATE_LIMIT", "lots"),
        ("BOOKING_RATE_LIMIT", "0/h"),
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


def test_the_time_zone_is_set_once_for_pages_the_beat_and_content():
    show = (
        "from django.conf import settings; from articles.content import CLINIC_TZ; "
        "print(settings.TIME_ZONE, settings.CELERY_TIMEZONE, CLINIC_TZ)"
    )
    assert start("shell", "-c", show).stdout.split()[-3:] == ["America/Los_Angeles"] * 3
    berlin = start("shell", "-c", show, TIME_ZONE="Europe/Berlin")
    assert berlin.stdout.split()[-3:] == ["Europe/Berlin"] * 3, berlin.stderr


def test_links_signed_with_a_retired_key_still_verify_from_the_fallbacks():
    from django.core import signing
    from django.test.utils import override_settings

    salt = "newsletter.unsubscribe"
    with override_settings(SECRET_KEY="retired-key-" + "x" * 40):
        token = signing.dumps({"subscriber": 7}, salt=salt)
    verify = f"from django.core import signing; print(signing.loads({token!r}, salt={salt!r}))"
    new_key = "current-key-" + "y" * 40

    rotated = start(
        "shell",
        "-c",
        verify,
        SECRET_KEY=new_key,
        SECRET_KEY_FALLBACKS=f"another-old-key, retired-key-{'x' * 40}",
    )
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip().splitlines()[-1] == "{'subscriber': 7}"
    forgotten = start("shell", "-c", verify, SECRET_KEY=new_key)
    assert forgotten.returncode != 0 and "BadSignature" in forgotten.stderr


def test_the_cache_and_the_broker_can_live_in_different_redis_servers():
    show = (
        "from django.conf import settings; "
        "print(settings.CACHES['default']['LOCATION'], settings.CELERY_BROKER_URL)"
    )
    apart = start(
        "shell",
        "-c",
        show,
        REDIS_URL="redis://broker.internal:6379/0",
        CACHE_URL="redis://cache.internal:6379/0",
        DEBUG="true",
    )
    assert apart.stdout.split()[-2:] == [
        "redis://cache.internal:6379/0",
        "redis://broker.internal:6379/0",
    ], apart.stderr
    together = start("shell", "-c", show, REDIS_URL="redis://one.internal:6379/0", DEBUG="true")
    assert together.stdout.split()[-2:] == ["redis://one.internal:6379/0"] * 2, together.stderr


def test_uploads_go_to_one_kind_of_storage_only():
    result = start(
        MEDIA_S3_BUCKET="clinic-media",
        MEDIA_STORAGE_BACKEND="django.core.files.storage.FileSystemStorage",
        DEBUG="true",
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Configuration error: MEDIA_STORAGE_BACKEND cannot")
