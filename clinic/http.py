"""What a response says about its reader, in one place: the page cache, compression and the
views that answer about one person all ask here."""

import re
from functools import wraps

_PRIVATE = re.compile(r"\b(?:private|no-store)\b", re.IGNORECASE)


def is_private(response):
    """The response says it is about one visitor (Cache-Control private or no-store)."""
    return bool(_PRIVATE.search(response.get("Cache-Control", "")))


def holds_csrf_token(response):
    """A form's CSRF token is for one visitor: a page with one is never shared or compressed."""
    return not response.streaming and b"csrfmiddlewaretoken" in response.content


def make_private(response):
    """A page with one person's details: never stored by a cache, never indexed."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def private_page(view):
    """Decorator: every response of `view`, error pages included, is make_private."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return make_private(view(request, *args, **kwargs))

    return wrapped
