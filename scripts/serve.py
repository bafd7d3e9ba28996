"""`make serve`: the whole site as in production, on this machine, started and stopped together.

Prepares, then supervises three programs:
  1. the PostgreSQL database is created if missing, migrated and given the clinic's content;
     static files are collected (hashed and compressed, as DEBUG off serves them);
  2. gunicorn serves the site (workers from the cores: 2 x cores + 1, at most 12;
     WEB_CONCURRENCY overrides), the Celery worker sends mail from both queues, and ONE
     Celery beat runs the schedule (two would fire every job twice);
  3. Ctrl-C (SIGINT) or SIGTERM stops all three, the web first; if any one of them dies,
     the others are stopped too and this exits 1, so nothing half-runs unnoticed.

Why a script rather than honcho/foreman with the Procfile: the preparation (create the
database, migrate, collect static files) must finish before anything starts, and a stop
must reach every child process (gunicorn's and Celery's workers too); each child gets its
own process group, which is what is signalled. No dependency is added.

The environment is the production one (see README); anything unset gets a local default:
DATABASE_URL postgres://postgres@127.0.0.1:5432/clinic_serve, PORT 8000, SITE_URL
http://127.0.0.1:PORT, and a SECRET_KEY kept in var/serve-secret-key. Email goes to the
worker's console unless EMAIL_URL is set.

Redis: with none of REDIS_URL, CACHE_URL and CELERY_BROKER_URL set (and redis-server
installed), two Redis servers of its own are started first and stopped last, as production
should run them: the cache's (port SERVE_CACHE_REDIS_PORT, 6380) with maxmemory
(SERVE_CACHE_MAXMEMORY, 64mb) and allkeys-lru, so a flood of pages evicts old pages; and the
broker's (SERVE_BROKER_REDIS_PORT, 6381) with noeviction and an append-only file under
var/redis-broker, so no task is ever evicted or lost. Set the URLs to use Redis servers of
your own instead.
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Seconds a program may take to stop after SIGTERM before its whole group is killed: long
# enough for gunicorn to finish its requests and the worker its current email.
STOP_SECONDS = 20


def say(message):
    print(f"serve: {message}", flush=True)


def environment():
    """The production environment, with local defaults for whatever is not set."""
    env = dict(os.environ)
    env["DEBUG"] = "false"
    env.setdefault("PORT", "8000")
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic_serve")
    if not any(env.get(name) for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL")):
        if shutil.which("redis-server"):
            env["CACHE_URL"] = f"redis://127.0.0.1:{cache_redis_port(env)}/0"
            env["REDIS_URL"] = f"redis://127.0.0.1:{broker_redis_port(env)}/0"
            env["SERVE_OWN_REDIS"] = "1"
        else:
            say("redis-server is not installed: using the Redis at 127.0.0.1:6379")
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    env.setdefault("SITE_URL", f"http://127.0.0.1:{env['PORT']}")
    if not env.get("SECRET_KEY"):
        key_file = ROOT / "var" / "serve-secret-key"
        if not key_file.exists():
            key_file.parent.mkdir(exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(50))
        env["SECRET_KEY"] = key_file.read_text().strip()
    return env


def cache_redis_port(env):
    return int(env.get("SERVE_CACHE_REDIS_PORT") or 6380)


def broker_redis_port(env):
    return int(env.get("SERVE_BROKER_REDIS_PORT") or 6381)


def redis_programs(env):
    """{name: command} for the Redis servers this script starts itself (none if the
    environment names its own): the cache's may evict, the broker's never does."""
    if env.get("SERVE_OWN_REDIS") != "1":
        return {}
    broker_dir = ROOT / "var" / "redis-broker"
    broker_dir.mkdir(parents=True, exist_ok=True)
    server = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1"]
    return {
        "cache-redis": [
            *server,
            *("--port", str(cache_redis_port(env))),
            *("--maxmemory", env.get("SERVE_CACHE_MAXMEMORY") or "64mb"),
            *("--maxmemory-policy", "allkeys-lru"),
            *("--save", "", "--appendonly", "no"),
        ],
        "broker-redis": [
            *server,
            *("--port", str(broker_redis_port(env))),
            *("--maxmemory-policy", "noeviction"),
            *("--appendonly", "yes", "--dir", str(broker_dir)),
        ],
    }


def wait_for_redis(url, seconds=10):
    """Wait until the Redis at `url` answers PING; raise if it does not in time."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        client.close()


def create_database(url):
    """Create the PostgreSQL database named by `url` when it does not exist yet."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    connection = psycopg2.connect(
        dbname="postgres",
        user=unquote(parts.username or "") or None,
        password=unquote(parts.password or "") or None,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        connect_timeout=5,
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                say(f"created database {name}")
    finally:
        connection.close()


def prepare(env):
    if urlsplit(env["DATABASE_URL"]).scheme.startswith("postgres"):
        create_database(env["DATABASE_URL"])
    for command in (
        ["migrate", "--noinput"],
        ["load_content"],
        ["collectstatic", "--noinput", "--verbosity", "0"],
    ):
        say("manage.py " + " ".join(command))
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True)


def programs(env):
    """{name: command} for the three long-running programs."""
    cores = os.cpu_count() or 1
    workers = env.get("WEB_CONCURRENCY") or str(min(2 * cores + 1, 12))
    bulk = env.get("CELERY_BULK_QUEUE", "").strip() or "bulk"
    celery = [PYTHON, "-m", "celery", "-A", "clinic"]
    return {
        "web": [
            PYTHON,
            "-m",
            "gunicorn",
            "clinic.wsgi",
            "--bind",
            f"{env['HOST']}:{env['PORT']}",
            "--workers",
            workers,
            # Database waits are bounded well under it (DATABASE_*_TIMEOUT settings).
            "--timeout",
            "30",
            "--graceful-timeout",
            str(STOP_SECONDS - 5),
        ],
        "worker": [*celery, "worker", "-Q", f"celery,{bulk}", "--loglevel=info"],
        # -s: beat remembers when each job last ran in var/, not in the working directory.
        "beat": [*celery, "beat", "--loglevel=info", "-s", str(ROOT / "var" / "celerybeat")],
    }


def stop(running):
    """SIGTERM each program's whole process group (web first), then SIGKILL what stays."""
    for name, process in running.items():
        if process.poll() is None:
            say(f"stopping {name}")
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for name, process in running.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_SECONDS} s: killing it")
        # Whatever the leader did, no child of it (a gunicorn or Celery worker) outlives it.
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process, signum):
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, signum)


def main():
    env = environment()
    backing = {}
    try:
        # The Redis servers first (the site needs them to start), stopped last.
        for name, command in redis_programs(env).items():
            backing[name] = subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.DEVNULL, process_group=0
            )
            say(f"started {name} (pid {backing[name].pid}): {' '.join(command[3:])}")
        if backing:
            wait_for_redis(env["CACHE_URL"])
            wait_for_redis(env["REDIS_URL"])
        prepare(env)
    except KeyboardInterrupt:
        stop(backing)
        return 130
    except Exception as exc:  # psycopg2's or a manage.py command's failure: one line
        say(f"could not prepare the site: {exc.__class__.__name__}: {exc}".strip())
        stop(backing)
        return 1

    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    running = {}
    for name, command in programs(env).items():
        # Its own process group: Ctrl-C reaches only this script, which stops them in order.
        running[name] = subprocess.Popen(command, cwd=ROOT, env=env, process_group=0)
        say(f"started {name} (pid {running[name].pid})")
    running.update(backing)  # watched like the others, and stopped after them
    say(f"serving {env['SITE_URL']} (Ctrl-C stops everything)")

    status = 0
    while not stopping:
        died = [name for name, process in running.items() if process.poll() is not None]
        if died:
            say(f"{', '.join(died)} stopped unexpectedly: stopping the rest")
            status = 1
            break
        time.sleep(0.2)
    stop(running)
    say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
