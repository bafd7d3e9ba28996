"""What production relies on: hashed static files, the beat schedule, a worker-ready app."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from clinic.celery import app


def test_collectstatic_builds_hashed_compressed_files(tmp_path, settings):
    production = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=str(tmp_path), STORAGES=production):
        call_command("collectstatic", "--noinput", verbosity=0)
        from django.templatetags.static import static

        url = static("vendor/bootstrap/bootstrap.min.css")
    assert url.startswith("/static/vendor/bootstrap/bootstrap.min.") and url != (
        "/static/vendor/bootstrap/bootstrap.min.css"
    )
    built = Path(tmp_path, url.removeprefix("/static/"))
    assert built.exists() and Path(f"{built}.gz").exists()
    assert (tmp_path / "vendor/bootstrap/LICENSE").exists()


def test_beat_republishes_unsent_emails_every_few_minutes():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["republish-due-emails"]
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 300


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("task_serializer", "json"),
        ("task_acks_late", True),
        ("task_reject_on_worker_lost", True),
        ("task_time_limit", 60),
    ],
)
def test_celery_is_configured_for_safe_retries(setting, value):
    assert app.conf[setting] == value


def redis_command(unit):
    """The redis-server options (name: value) that a systemd unit in deploy/ starts with."""
    import shlex

    text = (Path(__file__).resolve().parents[2] / "deploy" / "systemd" / unit).read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    words = shlex.split(line.removeprefix("ExecStart="))
    assert words[0].endswith("redis-server")
    return dict(zip(words[1::2], words[2::2], strict=True))


def test_the_cache_may_evict_and_the_broker_never_does():
    cache = redis_command("clinic-redis-cache.service")
    broker = redis_command("clinic-redis-broker.service")
    assert cache["--maxmemory-policy"] == "allkeys-lru" and cache["--maxmemory"].endswith("mb")
    assert broker["--maxmemory-policy"] == "noeviction" and broker["--appendonly"] == "yes"
    assert cache["--port"] != broker["--port"]  # two servers: one Redis has one policy


@pytest.mark.django_db
def test_a_retention_message_queued_under_the_tasks_old_name_still_runs():
    # Queued by the beat of the release before the task moved from booking to clinic.
    app.loader.import_default_modules()
    old, new = app.tasks["booking.tasks.apply_retention"], app.tasks["clinic.tasks.apply_retention"]
    assert old.apply().get() == new.apply().get()
    assert "anonymised" in old.apply().get()
