"""Logs: one JSON line per request and per task on stdout, with no patient data in it.

What a line may carry is chosen, not filtered afterwards: method, path, status and duration
for a request; name, id, state and duration for a task; never a query string, a form, a
header or a task's arguments. Paths lose their signed tokens (/book/manage/<redacted>/).
As a second line of defence every message and traceback is scrubbed of anything that
looks like an email address or a phone number before it is written.

A client's mistake (a bad Host header, a malformed request) is one line, the request's
own, with the error's name: no traceback, and nothing the client sent repeated at length.
"""

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

MAX_PATH = 200
MAX_MESSAGE = 2000
REDACTED = "<redacted>"
# URL parameters that are secrets (signed or random tokens in manage, confirmation,
# waitlist, therapist calendar feed, health history, confirm and unsubscribe links), whatever
# route.
SECRET_KWARGS = frozenset({"token"})
# The same links by prefix, for paths no route matched and for messages quoting a path.
_TOKEN_PATH = re.compile(
    r"(/(?:book/(?:manage|appointment|health|therapist-calendar|waitlist/(?:leave|offer))"
    r"|newsletter/(?:confirm|unsubscribe))/)[^/\s?#\"']+"
)
_EMAIL = re.compile(r"[\w.!#$%&'*+=?^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.ASCII)
# A phone number in any common spelling: +12095550142, (209) 555-0142, 209.555.0142...
# A run of digits and separators is checked for its digit count (see _phone), so dates,
# times, ids and durations are left alone.
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+|%2B)?\(?\d[\d ().-]{5,}\d(?![\w:-])")
# The fields a line may carry besides time, level, logger and message.
FIELDS = ("method", "path", "status", "duration_ms", "error", "task", "task_id", "state")


def _phone(match):
    digits = sum(char.isdigit() for char in match.group())
    return REDACTED if 9 <= digits <= 15 else match.group()


def redact(text):
    """`text` without email addresses, phone numbers or link tokens."""
    text = _TOKEN_PATH.sub(rf"\1{REDACTED}", text)
    text = _EMAIL.sub(REDACTED, text)
    return _PHONE.sub(_phone, text)


def _truncate(text, limit):
    return text if len(text) <= limit else f"{text[:limit]}…(+{len(text) - limit} chars)"


def loggable_path(request):
    """The request's path without query string or secret URL parameters, shortened."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name, value in match.kwargs.items():
            if name in SECRET_KWARGS and isinstance(value, str) and value:
                # The whole segment only: a short (tampered) token must not eat other text.
                path = re.sub(rf"(?<=/){re.escape(value)}(?=/|$)", REDACTED, path)
    return redact(_truncate(path, MAX_PATH))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the known fields, and a
    traceback (as one string) only for a server error."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(_truncate(record.getMessage(), MAX_MESSAGE)),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class ClientErrorFilter(logging.Filter):
    """Lets through no second line about a request that already gets its own.

    Django logs every 4xx ("Not Found: /path", with the unredacted path) and every
    SuspiciousOperation (a bad Host header: a traceback, the header three times). The
    request's line already says the status; the error's name is added to it and the rest
    dropped. Server errors (5xx) keep their traceback: they are bugs to fix.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        if record.name.startswith("django.security."):
            if request is not None and hasattr(request, "path"):
                request.clinic_log_error = record.name.rsplit(".", 1)[-1]
                return False
            record.exc_info = record.exc_text = None
            return True
        if record.name in ("django.request", "django.server"):
            return getattr(record, "status_code", 500) >= 500
        return True


class StdoutHandler(logging.StreamHandler):
    """A stream handler on whatever sys.stdout is when a line is written (so a process
    manager, or a test capturing output, gets every line)."""

    def __init__(self):
        super().__init__(stream=sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass  # always the current sys.stdout


request_logger = logging.getLogger("clinic.request")
task_logger = logging.getLogger("clinic.task")


class RequestLogMiddleware:
    """Logs one line per request when its response is ready. Goes first in MIDDLEWARE, so
    it also sees responses other middleware make (cached pages, redirects, a bad Host)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        log_request(request, response.status_code, started)
        return response


def log_request(request, status, started):
    """The one line about `request`, answered `status`, begun at monotonic time `started`
    (also written for pages the WSGI handler answers from the cache, clinic.pagecache)."""
    method, path = _truncate(request.method or "", 16), loggable_path(request)
    request_logger.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "error": getattr(request, "clinic_log_error", None),
        },
    )


def task_started(task=None, **kwargs):
    """Celery's task_prerun: note when the task began, on its own request context."""
    task.request.log_started = time.monotonic()


def task_finished(task_id=None, task=None, state=None, **kwargs):
    """Celery's task_postrun: one line with the task's name, id, outcome and duration
    (never its arguments or result, which may name a patient)."""
    started = getattr(task.request, "log_started", None)
    duration = None if started is None else round((time.monotonic() - started) * 1000, 1)
    name = getattr(task, "name", "?")
    task_logger.log(
        logging.INFO if state in (None, "SUCCESS", "RETRY") else logging.WARNING,
        "task %s %s",
        name,
        state,
        extra={"task": name, "task_id": task_id, "state": state, "duration_ms": duration},
    )
