"""Logs: one JSON line per request and per task, and no patient's data in any of them."""

import json
import logging
import re
from urllib.parse import quote

import pytest

from booking.links import manage_token
from booking.models import Appointment
from tests.booking.test_intake import ALL_YES, TELLTALES
from tests.booking.test_views import details_url, form_data
from tests.newsletter.test_signup import confirm_link, sign_up

pytestmark = pytest.mark.django_db

EMAIL = "pat.example+calf@example.com"
# The phone as typed, as stored, and as it could be printed.
PHONES = ["(209) 555-0142", "+12095550142", "2095550142", "209-555-0142", "209.555.0142"]


@pytest.fixture
def logs(caplog, capsys, settings):
    """Logging as with LOG_LEVEL=DEBUG: every logger at DEBUG but those the settings hold
    higher on purpose. `logs()` is (the lines written to stdout, every raw record)."""
    caplog.set_level(logging.DEBUG)
    held = {name for name, config in settings.LOGGING["loggers"].items() if "level" in config}
    saved = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        if name not in held:
            saved.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
    written = []

    def read():
        written.extend(capsys.readouterr().out.splitlines())
        raw = [
            f"{record.name} {record.getMessage()} {caplog.handler.format(record)}"
            for record in caplog.records
        ]
        return written, raw

    yield read
    for logger, level in saved:
        logger.setLevel(level)


def lines(written):
    """The JSON lines among what was written (pytest's own output is not JSON)."""
    parsed = []
    for line in written:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    return parsed


def test_a_booking_a_manage_visit_and_a_sign_up_log_no_patient_data(
    client, clinic, booking_rules, therapist, at, logs
):
    url = details_url(therapist, at(10))
    data = form_data(client, url, email=EMAIL, phone=PHONES[0], **ALL_YES)
    booked = client.post(url, data)
    assert booked.status_code == 303
    confirmation = booked["Location"]
    assert client.get(confirmation).status_code == 200
    appointment = Appointment.objects.get()
    assert appointment.patient_email == EMAIL and appointment.needs_clearance
    manage = f"/book/manage/{manage_token(appointment)}/"
    assert client.get(manage).status_code == 200
    assert client.get(f"{manage}move/").status_code == 200

    assert sign_up(client, email=EMAIL).status_code == 302
    confirm = confirm_link(EMAIL)
    assert client.get(confirm).status_code == 200
    assert client.post(confirm).status_code in (200, 302)

    written, raw = logs()
    secrets = [
        EMAIL,
        quote(EMAIL, safe=""),
        "example.com",
        "Pat Example",
        *PHONES,
        "555-0142",
        appointment.public_token,
        manage_token(appointment),
        confirm.rstrip("/").rsplit("/", 1)[-1],
        *TELLTALES,
        "Left calf",  # the notes
    ]
    for where, text in (("stdout", "\n".join(written)), ("a log record", "\n".join(raw))):
        for secret in secrets:
            assert secret.lower() not in text.lower(), f"{secret!r} in {where}"

    requests = [line for line in lines(written) if line["logger"] == "clinic.request"]
    paths = [(line["method"], line["path"], line["status"]) for line in requests]
    assert ("POST", url, 303) in paths
    assert ("GET", "/book/appointment/<redacted>/", 200) in paths
    assert ("GET", "/book/manage/<redacted>/", 200) in paths
    assert ("GET", "/book/manage/<redacted>/move/", 200) in paths
    assert ("GET", "/newsletter/confirm/<redacted>/", 200) in paths
    assert all(isinstance(line["duration_ms"], float) for line in requests)
    assert len(requests) == 8  # one line per request (the form read first), and only one


def test_a_task_logs_one_line_with_its_name_state_and_duration(logs):
    from clinic.tasks import republish_due_emails_task

    republish_due_emails_task.apply()
    written, _ = logs()
    tasks = [line for line in lines(written) if line.get("task")]
    assert len(tasks) == 1
    assert tasks[0]["task"] == "clinic.tasks.republish_due_emails"
    assert tasks[0]["state"] == "SUCCESS" and tasks[0]["duration_ms"] >= 0


def test_a_query_string_and_a_bad_link_token_stay_out_of_the_log(client, clinic, logs):
    assert client.get("/articles/", {"q": EMAIL}).status_code == 200
    assert client.get("/book/manage/not-a-real-token-but-a-secret/").status_code == 404
    assert client.get(f"/no-such-page/{EMAIL}/").status_code == 404
    written, _ = logs()
    output = "\n".join(written)
    assert EMAIL not in output and "not-a-real-token" not in output
    assert [line["path"] for line in lines(written)] == [
        "/articles/",
        "/book/manage/<redacted>/",
        "/no-such-page/<redacted>/",
    ]


def test_a_therapists_calendar_feed_link_stays_out_of_the_log(client, clinic, therapist, logs):
    from booking.services import reset_calendar_feed

    token = reset_calendar_feed(therapist=therapist)
    assert client.get(f"/book/therapist-calendar/{token}/visits.ics").status_code == 200
    assert client.get("/book/therapist-calendar/a-guessed-secret/visits.ics").status_code == 404
    assert client.get("/book/therapist-calendar/no/such/path").status_code == 404
    written, raw = logs()
    # Django's own "Not Found: <path>" records never reach the output (ClientErrorFilter).
    assert token not in "\n".join(raw) and token not in "\n".join(written)
    assert "a-guessed-secret" not in "\n".join(written)
    assert [line["path"] for line in lines(written)] == [
        "/book/therapist-calendar/<redacted>/visits.ics",
        "/book/therapist-calendar/<redacted>/visits.ics",
        "/book/therapist-calendar/<redacted>/such/path",
    ]


@pytest.mark.parametrize("host", ["evil.example", "x" * 5000, "bad host\nwith newline"])
def test_a_bad_host_header_is_one_line_without_a_traceback(client, logs, host):
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 400
    written, _ = logs()
    output = "\n".join(written)
    assert "Traceback" not in output
    assert len(written) == 1, written
    line = json.loads(written[0])
    assert (line["status"], line["error"]) == (400, "DisallowedHost")
    assert len(written[0]) < 400  # a 5 KB header is not repeated


def test_the_health_history_link_and_answers_stay_out_of_the_log(
    client, booking_rules, clinic, appointment, logs
):
    from booking.health import health_token

    token = health_token(appointment, emailed=True)
    url = f"/book/health/{token}/"
    page = client.get(url).content.decode()
    version = re.search(r'name="consent_version" value="(\d+)"', page).group(1)
    answers = {
        "conditions": "Zebrafish syndrome",
        "medications": "Quixotamol",
        "pressure": "firm",
        "emergency_name": "Robin Example",
        "emergency_phone": "(209) 555-0199",
        **dict.fromkeys(
            [
                "intake_clot_signs",
                "intake_surgery_or_immobility",
                "intake_blood_thinners",
                "intake_pregnant",
            ],
            "yes",
        ),
        "consent_version": version,
        "signed_name": "Pat Example",
        "agree": "on",
    }
    assert client.post(url, answers).status_code == 303
    secrets = [token, "Zebrafish", "Quixotamol", "Robin", "555-0199", "pat@example"]
    written, raw = logs()
    for where, text in (("stdout", "\n".join(written)), ("a log record", "\n".join(raw))):
        for secret in secrets:
            assert secret.lower() not in text.lower(), f"{secret!r} in {where}"
    paths = [line["path"] for line in lines(written) if line["logger"] == "clinic.request"]
    assert "/book/health/<redacted>/" in paths
    # A damaged link's 404 (Django's own warning quotes the path) is written redacted too.
    assert client.get(f"/book/health/{token}x/").status_code == 404
    written, _raw = logs()
    assert token[:20] not in "\n".join(written)
