"""Serve the site as in production and load it over HTTP, beside bare Django as the ceiling.

    make bench        (this runs last)
    .venv/bin/python bench/http_bench.py

The site runs under gunicorn (-w 2, DEBUG off) on PostgreSQL (HTTP_BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/clinic_http: created, migrated and loaded with the
clinic's content if missing) and Redis (HTTP_BENCH_REDIS_URL, default db 8, flushed first).
A bare Django view rendering a ~10 KB template (bench/bare/) runs with the same gunicorn
settings. Each page is loaded with `wrk -t2 -c32 -d10s` (a Python load generator if wrk is
missing), alternating with bare Django, BENCH_ROUNDS rounds (default 2); the ratio is taken
against bare Django in the same round. Then it prints the bytes each public page costs as
served to a browser (compressed, with its CSS and images).

Named http_bench.py, not http.py: a script's folder comes first on sys.path, so bench/http.py
would shadow the standard library's `http` for every script in bench/.
Figures, not a test: nothing here passes or fails.
"""

import asyncio
import gzip
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
DATABASE_URL = os.environ.get(
    "HTTP_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinic_http"
)
REDIS_URL = os.environ.get("HTTP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
SITE_PORT = int(os.environ.get("HTTP_BENCH_PORT", "8731"))
BARE_PORT = SITE_PORT + 1
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = 32
# What a browser sends; bare Django ignores it (it has no compression).
ACCEPT_ENCODING = "gzip, deflate, br"
WORK = ROOT / "var" / "bench"
CALF_ARTICLE = "/articles/tight-calf-muscles-low-back-pain/"
TOPIC = "/articles/topics/low-back-pain/"
SERVICE = "massage-60"


def site_env():
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CELERY_BROKER_URL", "EMAIL_URL", "DEBUG", "ALLOWED_HOSTS")
    }
    env.update(
        DEBUG="false",
        SECRET_KEY="bench-only-not-secret",
        SITE_URL=f"http://127.0.0.1:{SITE_PORT}",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        # Mail from a booking made for the Lighthouse run goes nowhere.
        CELERY_BROKER_URL="memory://",
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        STATIC_ROOT=str(WORK / "static"),
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(*args):
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=site_env(), check=True)


def prepare():
    """Create, migrate and fill the PostgreSQL database if needed; collect static; flush Redis."""
    import psycopg2
    import redis

    url = urlsplit(DATABASE_URL)
    name = url.path.lstrip("/")
    admin = psycopg2.connect(
        host=url.hostname, port=url.port or 5432, user=url.username, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    WORK.mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput", "-v0")
    manage("load_content", "-v0")
    manage("collectstatic", "--noinput", "-v0")
    redis.Redis.from_url(REDIS_URL).flushdb()


@contextmanager
def gunicorn(app, port, env, log_name):
    log = open(WORK / log_name, "w")  # noqa: SIM115  # open for as long as the server runs
    process = subprocess.Popen(
        [GUNICORN, app, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(port, "/", timeout=2)
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    message = f"gunicorn {app} did not start: see {WORK / log_name}"
                    raise SystemExit(message) from exc
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextmanager
def servers(*, bare=True):
    """The site and (unless told) bare Django, under gunicorn -w 2, until the block ends."""
    prepare()
    bare_env = {**site_env(), "DJANGO_SETTINGS_MODULE": "bench.bare.settings"}
    with gunicorn("clinic.wsgi", SITE_PORT, site_env(), "site.log") as site:
        if not bare:
            yield site, None
            return
        with gunicorn("bench.bare.wsgi", BARE_PORT, bare_env, "bare.log") as ceiling:
            yield site, ceiling


def fetch(port, path, *, timeout=10, accept_encoding=ACCEPT_ENCODING):
    """(status, header bytes, body bytes as sent, body decoded) of one GET."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": accept_encoding})
        response = connection.getresponse()
        raw = response.read()
        header_bytes = len(str(response.msg)) + len("HTTP/1.1 200 OK\r\n")
        encoding = response.getheader("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(raw)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(raw)
        else:
            body = raw
        return response.status, header_bytes, raw, body
    finally:
        connection.close()


def booking_paths():
    """The service's month (date step), the next month, its first free day (time step) and
    that day's first time (details step), as the pages' links say."""
    day_path = f"/book/{SERVICE}/any/"
    status, _headers, _raw, body = fetch(SITE_PORT, day_path)
    if status != 200:
        raise SystemExit(f"{day_path} answered {status}")
    match = re.search(rf'href="(/book/{SERVICE}/any/\d{{4}}-\d{{2}}-\d{{2}}/)"', body.decode())
    if not match:
        raise SystemExit(f"{day_path} shows no free day: is the demo schedule loaded?")
    time_path = match.group(1)
    later = re.search(r'href="\?month=(\d{4}-\d{2})', body.decode())
    next_month = f"{day_path}?month={later.group(1)}" if later else day_path
    body = fetch(SITE_PORT, time_path)[3].decode()
    details = re.search(rf'href="({re.escape(time_path)}\d{{4}}/)"', body)
    return day_path, next_month, time_path, details.group(1) if details else None


# --- Load -----------------------------------------------------------------------------------
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def _parse_wrk(out):
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p50, p99, int(bad.group(1)) if bad else 0


def run_wrk(url):
    """(requests/s, p50 ms, p99 ms, non-2xx count) from wrk."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--latency",
            "-H",
            f"Accept-Encoding: {ACCEPT_ENCODING}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse_wrk(out)


async def _python_load(url, seconds):
    """A plain HTTP/1.1 load generator: CONNECTIONS clients, each one request at a time."""
    parts = urlsplit(url)
    request = (
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n\r\n"
    ).encode()
    latencies, bad = [], 0
    stop = time.monotonic() + seconds

    async def client():
        nonlocal bad
        reader = writer = None
        while time.monotonic() < stop:
            if writer is None:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")):
                bad += 1
            if re.search(rb"(?i)connection:\s*close", head):
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    latencies.sort()
    return (
        len(latencies) / seconds,
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
        bad,
    )


def load(url):
    if shutil.which("wrk"):
        return run_wrk(url)
    return asyncio.run(_python_load(url, SECONDS))


def warm(port, path):
    for _ in range(20):
        fetch(port, path)


# --- Bytes ----------------------------------------------------------------------------------
ASSET = re.compile(
    r'<link[^>]+rel="(?:stylesheet|icon)"[^>]*href="([^"]+)"|<(?:script|img)[^>]+src="([^"]+)"'
)


def page_weight(path):
    """(HTML bytes, CSS bytes, other asset bytes) as sent, headers included, compressed."""
    status, headers, raw, body = fetch(SITE_PORT, path)
    html = headers + len(raw)
    css = other = 0
    for match in ASSET.finditer(body.decode()):
        asset = urljoin(path, match.group(1) or match.group(2))
        _status, asset_headers, asset_raw, _body = fetch(SITE_PORT, asset)
        if asset.endswith(".css"):
            css += asset_headers + len(asset_raw)
        else:
            other += asset_headers + len(asset_raw)
    return status, html, css, other


# The 50-client mixed load: each request picks one of these pages at random (wrk's Lua).
MIXED_CLIENTS = 50
MIXED_SCRIPT = """
local paths = {}
init = function(args) for i, path in ipairs(args) do paths[i] = path end end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def run_wrk_mixed(paths):
    """(requests/s, p50 ms, p99 ms, non-2xx count) of MIXED_CLIENTS clients over `paths`."""
    script = WORK / "mixed.lua"
    script.write_text(MIXED_SCRIPT)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{MIXED_CLIENTS}",
            f"-d{SECONDS}s",
            "--latency",
            "-H",
            f"Accept-Encoding: {ACCEPT_ENCODING}",
            "-s",
            str(script),
            f"http://127.0.0.1:{SITE_PORT}/",
            "--",
            *paths,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse_wrk(out)


def machine():
    """One line naming the machine (CPU model, cores, load) and the commit."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        commit = (commit or "unknown") + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        commit = "unknown (no git)"
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"machine: {model}, {os.cpu_count()} cores, load {load}; commit {commit}"


def span(values, fmt):
    low, high = min(values), max(values)
    low_text, high_text = f"{low:{fmt}}", f"{high:{fmt}}"
    return low_text if low_text == high_text else f"{low_text}–{high_text}"


def main():
    loader = "wrk" if shutil.which("wrk") else "python load generator (wrk not found)"
    started = machine()
    print(started)
    print(
        f"HTTP: gunicorn -w 2, DEBUG off, PostgreSQL + Redis; {loader}, {CONNECTIONS} "
        f"connections, {SECONDS} s per run, {ROUNDS} rounds, Accept-Encoding: {ACCEPT_ENCODING}"
    )
    with servers():
        day_path, next_month, time_path, details_path = booking_paths()
        pages = [
            ("home", "/"),
            ("calf article", CALF_ARTICLE),
            ("/book/ (treatments)", "/book/"),
            ("therapist step", f"/book/{SERVICE}/"),
            ("month (date step)", day_path),
            ("day (time step)", time_path),
        ]
        if details_path:
            pages.append(("details step", details_path))
        # Twelve pages a crowd reads and books through: articles and every booking step.
        mixed = [
            "/",
            "/es/",
            "/articles/",
            CALF_ARTICLE,
            TOPIC,
            "/newsletter/",
            "/book/",
            f"/book/{SERVICE}/",
            day_path,
            next_month,
            time_path,
            details_path or time_path,
        ]
        results = {label: [] for label in ["bare Django", *(label for label, _ in pages)]}
        mixed_runs = []
        for _round in range(ROUNDS):
            for label, path in pages:
                warm(BARE_PORT, "/")
                bare = load(f"http://127.0.0.1:{BARE_PORT}/")
                warm(SITE_PORT, path)
                site = load(f"http://127.0.0.1:{SITE_PORT}{path}")
                results["bare Django"].append(bare)
                results[label].append((*site, site[0] / bare[0]))
            if shutil.which("wrk"):
                for path in mixed:
                    warm(SITE_PORT, path)
                mixed_runs.append(run_wrk_mixed(mixed))
        print(f"\n{'page':<22} {'requests/s':>13} {'p50 ms':>11} {'p99 ms':>13} {'ratio':>11}")
        for label, runs in results.items():
            rates, p50s, p99s = [r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs]
            ratio = span([r[4] for r in runs], ".2f") if label != "bare Django" else "1"
            bad = sum(r[3] for r in runs)
            print(
                f"{label:<22} {span(rates, '.0f'):>13} {span(p50s, '.1f'):>11} "
                f"{span(p99s, '.1f'):>13} {ratio:>11}" + (f"  ({bad} non-2xx!)" if bad else "")
            )
        if mixed_runs:
            rates = [r[0] for r in mixed_runs]
            p50s, p99s = [r[1] for r in mixed_runs], [r[2] for r in mixed_runs]
            bad = sum(r[3] for r in mixed_runs)
            label = f"mixed, {MIXED_CLIENTS} clients"
            print(
                f"{label:<22} {span(rates, '.0f'):>13} {span(p50s, '.1f'):>11} "
                f"{span(p99s, '.1f'):>13} {'':>11}" + (f"  ({bad} non-2xx!)" if bad else "")
            )
            print(f"  (the mixed load picks at random among {len(mixed)} pages: {' '.join(mixed)})")
        print("targets: booking steps ≥ 0.30, cached pages ≥ 1.00, mixed p99 < 250 ms")
        ending = " ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"{started}; load at the end {ending}")

        print(f"\nBytes per page as served (Accept-Encoding: {ACCEPT_ENCODING}, headers included)")
        print(f"{'page':<44} {'HTML':>7} {'CSS':>7} {'other':>7} {'total':>8}")
        weighed = [
            ("/", "home"),
            ("/articles/", "article list"),
            (CALF_ARTICLE, "calf article"),
            (TOPIC, "topic page"),
            ("/newsletter/", "newsletter"),
            ("/book/", "booking: service"),
            (f"/book/{SERVICE}/", "booking: therapist"),
            (day_path, "booking: date"),
            (time_path, "booking: time"),
        ]
        if details_path:
            weighed.append((details_path, "booking: details"))
        for path, label in weighed:
            status, html, css, other = page_weight(path)
            total = html + css + other
            flag = "" if status == 200 else f"  (status {status})"
            print(
                f"{label + ' ' + path:<44.44} {html:>7,} {css:>7,} {other:>7,} "
                f"{total / 1024:>6.1f} KB{flag}"
            )


if __name__ == "__main__":
    sys.exit(main())
