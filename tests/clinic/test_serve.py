"""`make serve` really starts the whole stack, pages answer through gunicorn, and it stops.

PostgreSQL pass only: the script runs the site on PostgreSQL and Redis, as production does.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own server)
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), ""


def processes_marked(marker):
    """Pids of live processes whose environment carries `marker` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture
def serve_database():
    """A database name the script must create; dropped afterwards."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("`make serve` runs on PostgreSQL and Redis: pass (b) only")
    import psycopg2

    db = connection.settings_dict
    name = f"{db['NAME']}_serve"
    admin = psycopg2.connect(
        dbname="postgres",
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
    )
    admin.autocommit = True

    def drop():
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    yield (
        f"postgres://{quote(db['USER'] or '', safe='')}{password}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    )
    drop()
    admin.close()


def test_make_serve_starts_everything_answers_through_gunicorn_and_stops_everything(
    serve_database, tmp_path
):
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    redis = urlsplit(settings.REDIS_URL)
    # Its own Redis database: its worker must not take the test session's tasks.
    db_index = int(redis.path.strip("/") or 0)
    marker = f"clinic-serve-test-{uuid.uuid4().hex}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "CELERY_BROKER_URL")},
        "DATABASE_URL": serve_database,
        "REDIS_URL": redis._replace(path=f"/{(db_index + 1) % 16}").geturl(),
        "PORT": str(port),
        "SITE_URL": site,
        "SECRET_KEY": "serve-test-" + uuid.uuid4().hex * 2,
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "WEB_CONCURRENCY": "2",
        "SERVE_TEST_MARKER": marker,
    }
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "scripts/serve.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while time.monotonic() - started < 50:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if fetch(f"{site}/healthz")[0] == 200:
                    break
            except OSError:  # not listening yet
                pass
            time.sleep(0.5)
        else:
            pytest.fail("healthz did not answer 200 within 50 s")

        status, headers, home = fetch(f"{site}/")
        assert status == 200 and headers["Server"].startswith("gunicorn")
        assert headers["Cache-Control"] == "public, max-age=0, must-revalidate"
        # Production serves hashed static files (collectstatic ran; DEBUG is off).
        stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', home).group(1)
        assert fetch(site + stylesheet)[0] == 200
        article = re.search(r'href="(/articles/[a-z0-9-]+/)"', home).group(1)
        status, _, page = fetch(site + article)
        assert status == 200 and "<h1" in page
        # One worker and exactly one beat are running beside gunicorn.
        commands = [
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for pid in processes_marked(marker)
        ]
        assert sum(" beat " in command for command in commands) == 1, commands
        assert any(" worker -Q celery," in command for command in commands), commands
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            log.close()
    assert process.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    deadline = time.monotonic() + 5
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_marked(marker) == [], "a process of `make serve` outlived it"
    assert time.monotonic() - started < 60


def settings_of(**environment):
    """clinic/settings.py's STORAGES and SESSION_ENGINE with production's environment."""
    unset = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "MEDIA_STORAGE_BACKEND")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        {
            "SECRET_KEY": "x" * 50,
            "SITE_URL": "https://clinic.example",
            "DATABASE_URL": "sqlite:////nonexistent/clinic.sqlite3",
            **environment,
        }
    )
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.STORAGES['default'], s.SESSION_ENGINE]))"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_uploads_can_go_to_shared_storage_and_sessions_to_the_database():
    import json

    result = settings_of(
        MEDIA_STORAGE_BACKEND="django.core.files.storage.FileSystemStorage",
        MEDIA_STORAGE_OPTIONS='{"location": "/mnt/shared/media"}',
    )
    assert result.returncode == 0, result.stderr
    storage, sessions = json.loads(result.stdout.strip().splitlines()[-1])
    assert storage == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": "/mnt/shared/media"},
    }
    assert sessions == "django.contrib.sessions.backends.db"  # not on one server, not in Redis


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MEDIA_STORAGE_BACKEND", "not a class"), ("MEDIA_STORAGE_OPTIONS", "[1, 2]")],
)
def test_a_malformed_storage_setting_stops_start_up_naming_it(variable, value):
    result = settings_of(**{variable: value})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"Configuration error: {variable} ")
    assert "Traceback" not in result.stderr


def load_serve_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_script", ROOT / "scripts" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_serve_runs_the_cache_and_the_broker_in_redis_servers_of_their_own(monkeypatch):
    import shutil

    import redis

    if not shutil.which("redis-server") and os.environ.get("CI") != "true":
        pytest.skip("redis-server is not installed")
    serve = load_serve_script()
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SERVE_CACHE_REDIS_PORT", str(free_port()))
    monkeypatch.setenv("SERVE_BROKER_REDIS_PORT", str(free_port()))
    env = serve.environment()
    assert env["CACHE_URL"] != env["REDIS_URL"]  # the broker is REDIS_URL's
    programs = serve.redis_programs(env)
    # redis-server on the real clock: under `make test-dates` libfaketime would be preloaded
    # into it too, and its timers stall. The dates under test are the site's, not Redis's.
    real_clock = {k: v for k, v in os.environ.items() if not k.startswith(("FAKETIME", "LD_PRE"))}
    running = {
        name: subprocess.Popen(command, stdout=subprocess.DEVNULL, process_group=0, env=real_clock)
        for name, command in programs.items()
    }
    try:
        serve.wait_for_redis(env["CACHE_URL"])
        serve.wait_for_redis(env["REDIS_URL"])
        cache = redis.Redis.from_url(env["CACHE_URL"], decode_responses=True)
        broker = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
        # The cache may forget old pages; the broker may never drop a task.
        assert cache.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert int(cache.config_get("maxmemory")["maxmemory"]) == 64 * 1024 * 1024
        assert broker.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert broker.config_get("appendonly") == {"appendonly": "yes"}
        cache.close()
        broker.close()
    finally:
        serve.stop(running)


def test_make_serve_uses_the_redis_the_environment_names(monkeypatch):
    serve = load_serve_script()
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/0")
    monkeypatch.delenv("CACHE_URL", raising=False)
    env = serve.environment()
    assert serve.redis_programs(env) == {}
    assert env["REDIS_URL"] == "redis://redis.internal:6379/0" and "CACHE_URL" not in env
