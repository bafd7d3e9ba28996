"""Lighthouse (mobile) on the home page, the calf article and every booking step.

    make lighthouse

Serves the site as bench/http_bench.py does (gunicorn, DEBUG off, PostgreSQL + Redis), books
one visit so the confirmation page exists, and runs the npm package lighthouse (installed
into var/lighthouse by make) with Chromium at CHROME_PATH (default /usr/bin/chromium). Prints
the four category scores and the bytes transferred, read from each JSON report (kept in
var/bench/lighthouse/). Figures, not a test: nothing here passes or fails.
"""

import json
import os
import subprocess
import sys

from http_bench import (
    CALF_ARTICLE,
    PYTHON,
    ROOT,
    SERVICE,
    SITE_PORT,
    WORK,
    booking_paths,
    servers,
    site_env,
)

LIGHTHOUSE = ROOT / "var" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run"
)
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]

BOOK_ONE = """
from datetime import timedelta
from django.utils import timezone
from booking.models import Service, Therapist
from booking.services import PatientDetails, book_appointment
service = Service.objects.get(slug="{service}")
therapist = Therapist.objects.offering(service).first()
patient = PatientDetails(name="Lighthouse Bench", email="bench@example.com", phone="+12095550142")
for days in range(2, 40):
    start = timezone.localtime(timezone.now() + timedelta(days=days)).replace(
        hour=15, minute=0, second=0, microsecond=0)
    try:
        print(book_appointment(service=service, therapist=therapist, start=start,
                               patient=patient).public_token)
        break
    except Exception:
        continue
"""


def book_one():
    """The public token of a visit booked for the confirmation page."""
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", BOOK_ONE.format(service=SERVICE)],
        cwd=ROOT,
        env=site_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def audit(name, path):
    report = WORK / "lighthouse" / f"{name}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    # Lighthouse now and then fails to record a trace (NO_NAVSTART): one more try then.
    for attempt in (1, 2):
        done = subprocess.run(
            [
                str(LIGHTHOUSE),
                f"http://127.0.0.1:{SITE_PORT}{path}",
                "--output=json",
                f"--output-path={report}",
                f"--chrome-flags={CHROME_FLAGS}",
                "--quiet",
            ],
            env={**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")},
            check=attempt == 2,
        )
        if done.returncode == 0:
            break
    data = json.loads(report.read_text())
    scores = [round((data["categories"][c]["score"] or 0) * 100) for c in CATEGORIES]
    weight = int(data["audits"]["total-byte-weight"]["numericValue"])
    return scores, weight


def main():
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"{LIGHTHOUSE} is missing: run `make lighthouse`, which installs it")
    with servers(bare=False):
        day_path, time_path, details_path = booking_paths()
        pages = [
            ("home", "/"),
            ("article", CALF_ARTICLE),
            ("booking-service", "/book/"),
            ("booking-therapist", f"/book/{SERVICE}/"),
            ("booking-date", day_path),
            ("booking-time", time_path),
            ("booking-details", details_path),
            ("booking-confirmation", f"/book/appointment/{book_one()}/"),
        ]
        print("Lighthouse 12.2.3, mobile (its default), Chromium headless")
        print(f"{'page':<22} {'perf':>5} {'a11y':>5} {'best':>5} {'seo':>5} {'transferred':>12}")
        for name, path in pages:
            scores, weight = audit(name, path)
            print(f"{name:<22} " + " ".join(f"{s:>5}" for s in scores) + f" {weight:>10,} B")


if __name__ == "__main__":
    sys.exit(main())
