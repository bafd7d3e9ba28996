"""The database is down or too slow: a 503 "please call" page, fast, with nothing lost.

A database that cannot be reached, does not answer within its deadline or runs a query past
statement_timeout or lock_timeout raises OperationalError (clinic.db bounds every wait).
Instead of a 500, the visitor gets a 503 with Retry-After (so monitoring sees "unavailable",
not a bug) and a page in their language saying that online booking is down and which phone
to call. A form that was being sent comes back in it, everything typed kept, with a button
that sends it again. Rendering the page asks nothing of the database: the clinic's profile
comes from the cache or the last copy read (clinic.services.last_known_clinic_profile), or
the phone from CLINIC_PHONE_FALLBACK; flash messages (stored in the session) are left alone.
"""

import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# What a client (or a proxy, or a monitoring check) is told to wait before trying again.
RETRY_AFTER_SECONDS = 30
_NOT_RESENT = frozenset({"csrfmiddlewaretoken"})


def is_database_unavailable(exc):
    return isinstance(exc, (OperationalError, InterfaceError))


def posted_fields(request):
    """[(name, value)] of what `request` POSTed, for a page that offers to send it again
    (its old CSRF token left out: the page carries a fresh one)."""
    if request.method != "POST":
        return []
    try:
        return [
            (name, value)
            for name, values in request.POST.lists()
            for value in values
            if name not in _NOT_RESENT
        ]
    except Exception:  # noqa: BLE001  # an unreadable body: the page without the form
        return []


def database_unavailable(request):
    """The 503 page for `request`, keeping what it posted."""
    request.database_unavailable = True  # the page renders without the clinic's profile too
    posted = posted_fields(request)
    context = {
        "posted": posted,
        "retry_url": request.get_full_path(),
        "fallback_phone": settings.CLINIC_PHONE_FALLBACK,
        "messages": (),
    }
    try:
        response = render(request, "503.html", context, status=503)
    except Exception:  # noqa: BLE001  # never a 500 here: a plain line still says what to do
        logger.exception("Could not render the database-unavailable page")
        response = HttpResponse(
            _("We can't take bookings online right now. Please call the clinic."),
            content_type="text/plain; charset=utf-8",
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # It may hold what a patient typed; and it must not outlive the outage in any cache.
    response["Cache-Control"] = "private, no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turns a view's database outage into the 503 page (the 500 handler does the rest)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_unavailable(exception):
            return None
        logger.warning("Database unavailable: %s", exception.__class__.__name__)
        return database_unavailable(request)


def current_exception_is_database_unavailable():
    """For the 500 handler, which Django calls while handling the exception."""
    return is_database_unavailable(sys.exc_info()[1])
