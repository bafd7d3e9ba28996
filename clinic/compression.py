"""Smaller pages: gzip for pages that hold no secret, trimmed HTML for those that do.

Compression and BREACH: BREACH recovers a secret from a compressed HTTPS response whose
size an attacker can watch while reflecting chosen text into the same page (the booking
steps carry ?from=<article> along, for one). Django masks the CSRF token afresh on every
response, which protects that token, but not the other secrets on the same pages: the
details form's one-time submission key, the manage link's signed token, the confirmation
page's appointment token, a patient's details typed into a form. So rather than rely on
masking, a page is sent uncompressed when it holds a CSRF token (every form that posts with
one), sets a cookie, or is marked private or no-store (pages about one visitor). These are a
handful of small, rarely fetched pages; every public page, feed and the sitemap is
compressed, with Django's GZipMiddleware (and its random padding).

Trimming: an uncompressed page still need not carry the templates' indentation, which a
browser ignores (HTML collapses runs of white space). So on those pages each line's leading
blanks and empty lines are dropped, except inside <pre> and <textarea>, where white space is
content: about a quarter of the page. The admin is left alone (staff pages, own markup).
"""

import re

from django.conf import settings
from django.middleware.gzip import GZipMiddleware

from .http import holds_csrf_token, is_private

# Where white space is content: kept as it is.
_VERBATIM = re.compile(rb"(<pre\b.*?</pre>|<textarea\b.*?</textarea>)", re.IGNORECASE | re.DOTALL)
_INDENTATION = re.compile(rb"\n[ \t]*(?:\n[ \t]*)*")


def trim_html(content):
    """`content` without leading blanks on its lines or empty lines, outside <pre>/<textarea>."""
    parts = _VERBATIM.split(content)
    # split() with one group alternates: text, verbatim, text, verbatim, ..., text.
    for index in range(0, len(parts), 2):
        parts[index] = _INDENTATION.sub(b"\n", parts[index])
    return b"".join(parts)


def holds_a_secret(response):
    """True for a response that must not be compressed (see the module)."""
    return bool(response.cookies) or is_private(response) or holds_csrf_token(response)


class CompressionMiddleware(GZipMiddleware):
    """Gzip a response that holds no secret; trim an HTML one that does (see the module)."""

    def process_response(self, request, response):
        if not holds_a_secret(response):
            return super().process_response(request, response)
        if (
            not response.streaming
            and not response.has_header("Content-Encoding")
            and response.get("Content-Type", "").startswith("text/html")
            and not request.path_info.startswith(f"/{settings.ADMIN_URL}")
        ):
            response.content = trim_html(response.content)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
