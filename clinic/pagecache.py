"""Whole public pages served from the cache to anonymous visitors.

A shared article can bring a thousand visitors in an hour; they all see the same page, so
the second one should cost a cache read, not a render. A hit is answered by the WSGI handler
(clinic.wsgi: WSGIHandler below) before Django's request handling starts: no middleware, no
signals, no URL resolution, no query. PageCacheMiddleware, the outermost but the request
log, stores what the whole stack answered (security headers, CSP, Cache-Control, language,
Vary, compression: every header a fresh render carries), and answers hits itself for
what the handler leaves to it (HEAD, the test client, a failed schedule check).

What may be stored (all must hold):
- a GET or HEAD with no session or messages cookie (staff and anyone with a flash message
  always get a fresh page);
- a 200 from a view named in CACHEABLE_VIEWS: home, the articles (list, topic, detail,
  feeds), sitemap, robots.txt, the newsletter page, and the booking steps, which are the
  same for everybody (treatments, therapists, the month, a day's times, the details form).
  Never a page about one visitor;
- for the booking steps that show free times (SCHEDULE_VIEWS), a schedule version the view
  read before the rows it showed (booking.schedule_version): the entry keeps it and is
  served only while it is still the current one (one query), and only until the first free
  time it shows is too close to book (or a waitlist hold runs out);
- a response that sets no cookie, carries no CSRF token and does not say private or
  no-store (a staff preview says private). Except a page with holes: the details form is
  the same for everybody but for its two secrets, the CSRF token and the one-time
  submission key. Asked for by this middleware (fills_holes), its view renders the form
  with a placeholder for each (CSRF_HOLE, KEY_HOLE); the page is stored so, and every
  visitor, on a miss as on a hit, gets it with their own secrets put in and their CSRF
  cookie set by Django's own CSRF middleware, as a render would (fill_holes). Such a page
  keeps its Cache-Control (no-store): no browser or proxy keeps it, only this cache.

Entries are keyed by scheme, host name, path, the query parameters the page's view reads
(QUERY_PARAMETERS: the article list's page and topic, a topic's page; every other parameter
is ignored, so `?utm_source=…` or a crawler's junk shares the page's one entry) and the
encoding the client accepts (gzip or not: the compressed body is stored, so a hit does no
compression either). A search (`?q=`) is never stored: its text is the visitor's, unbounded,
and one entry per phrase would let anyone fill the cache; nor is a booking step reached from
an article or a therapist's page (`?from=`, `?therapist=`: the visitor's text too). So the
number of entries is bounded by the site's content, not by what visitors type.

Invalidation: every entry is tagged with the cache's version, a random token read when the
request began; saving or deleting anything a public page shows (articles, topics, authors,
references, the clinic's profile, hours and closures, services, therapists) replaces the
token, at once and again after commit, so an entry rendered from the old rows is never
served again, on any worker. Entries also expire on their own at the next local midnight
(the footer shows today's closures) and when the next scheduled article goes live.

The cache is optional: with Redis down a read is a miss and the page is rendered.
"""

import hashlib
import logging
import re
import time as clock
import uuid
from datetime import datetime, time, timedelta
from http import HTTPStatus
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.handlers import wsgi
from django.db import transaction
from django.db.models import Min
from django.http import HttpResponse
from django.http.request import split_domain_port
from django.utils import timezone

from . import pagecopies
from .http import holds_csrf_token, is_private

logger = logging.getLogger(__name__)

VERSION_KEY = "pagecache:version"
CACHEABLE_VIEWS = frozenset(
    {
        "home",
        "robots",
        "sitemap",
        "articles:list",
        "articles:topic",
        "articles:detail",
        "articles:rss",
        "articles:atom",
        "newsletter:signup",
        "booking:start",
        "booking:therapist",
        "booking:day",
        "booking:time",
        "booking:details",
    }
)
# The pages that show free times: stored with the schedule's version, see the module.
SCHEDULE_VIEWS = frozenset({"booking:day", "booking:time", "booking:details"})
# The pages stored with holes for each visitor's secrets, see the module.
HOLES_VIEWS = frozenset({"booking:details"})
CSRF_HOLE = "csrf-token-goes-here-0c1f5e"
KEY_HOLE = "submission-key-goes-here-7d2a9b"
# Paths that can lead to a cacheable view: anything else is not even looked up, so a manage
# link or a confirmation pays no cache round trip.
_CANDIDATE = re.compile(
    r"^/(?:(?:es/)?(?:articles/.*|newsletter/|book/(?!(?:manage|appointment|waitlist)/)"
    r"(?:[\w-]+/(?:[\w-]+/(?:\d{4}-\d{2}-\d{2}/(?:\d{4}/)?)?)?)?)?|robots\.txt|sitemap\.xml)$"
)
# The query parameters each cacheable page's view reads (by path); every other one is
# left out of the key. Views that read none (home, an article, feeds...) are not listed.
QUERY_PARAMETERS = (
    (re.compile(r"^/(?:es/)?articles/$"), ("page", "topic")),
    (re.compile(r"^/(?:es/)?articles/topics/[^/]+/$"), ("page",)),
    (re.compile(r"^/(?:es/)?book/[\w-]+/[\w-]+/$"), ("month",)),
)
# Parameters that make a page about what one visitor typed: never stored or looked up.
UNCACHED_PARAMETERS = frozenset({"q"})
# The same on the booking steps, which carry the article or therapist a visitor came from,
# or the waitlist offer they follow.
UNCACHED_BOOKING_PARAMETERS = frozenset({"q", "from", "therapist", "offer"})
_BOOKING = re.compile(r"^/(?:es/)?book/")
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")
_SKIPPED_HEADERS = frozenset({"set-cookie"})
MESSAGES_COOKIE = "messages"
# Cookies that make every page about their visitor: a session (staff), a flash message, and
# the bookings this browser just made (booking.views.BOOKED_COOKIE: back on the details step
# of a time they booked, they see their booking, never a blank form to book it twice).
PERSONAL_COOKIES = (settings.SESSION_COOKIE_NAME, MESSAGES_COOKIE, "booked")


def bump_version():
    """Retire every cached page: the next request for each renders it again (in every
    process: the copies they keep in memory listen for this, clinic.pagecopies)."""
    version = uuid.uuid4().hex
    try:
        cache.set(VERSION_KEY, version, None)
    except Exception:  # noqa: BLE001  # the cache is optional: entries expire by themselves
        logger.warning("Could not retire cached pages", exc_info=True)
    pagecopies.publish(version)


def retire_pages(**kwargs):
    """Signal receiver: retire cached pages now and again once the transaction commits.

    Now, so no request in between serves the old page; after commit, so a page rendered
    from the old rows while the transaction was open is not kept either.
    """
    bump_version()
    transaction.on_commit(bump_version)


def _seconds_to_live(now):
    """How long a page rendered `now` stays true: capped by midnight and scheduled articles."""
    from articles.models import Article

    seconds = settings.PAGE_CACHE_SECONDS
    local = timezone.localtime(now)
    midnight = timezone.make_aware(
        datetime.combine(local.date() + timedelta(days=1), time.min), local.tzinfo
    )
    seconds = min(seconds, (midnight - now).total_seconds())
    next_live = (
        Article.objects.filter(status=Article.Status.PUBLISHED, published_at__gt=now)
        .aggregate(first=Min("published_at"))
        .get("first")
    )
    if next_live is not None:
        seconds = min(seconds, (next_live - now).total_seconds())
    return int(seconds)


def _canonical_query(request):
    """The query parameters `request`'s view reads, in one spelling each ("" if none)."""
    names = next((names for path, names in QUERY_PARAMETERS if path.match(request.path_info)), ())
    parts = []
    for name in names:
        value = request.GET.get(name)  # the view reads the last value: so does the key
        if value is None or value == "":
            continue
        if name == "page" and value.isascii() and value.isdigit():
            value = value.lstrip("0") or "0"  # ?page=01 is ?page=1 (no int(): any length)...
            if value == "1":  # ...and ?page=1 is the page itself
                continue
        parts.append((name, value))
    return urlencode(parts)


def query_on_page(request):
    """The query string `request`'s page may show (its link to the other language keeps it):
    all of it on a page never stored, else only the parameters in the key, since a stored
    page goes to everyone whose address differs from this one in the rest."""
    if not _is_candidate(request):
        return request.META.get("QUERY_STRING", "")
    return _canonical_query(request)


def _key(request):
    encoding = "gzip" if _ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")) else "-"
    # The host name without a port, folded: "Clinic.example:443" is not a page of its own.
    host, _port = split_domain_port(request.META.get("HTTP_HOST", ""))
    address = f"{request.scheme}://{host}{request.path}?{_canonical_query(request)}"
    return (
        f"pagecache:{encoding}:{hashlib.md5(address.encode(), usedforsecurity=False).hexdigest()}"
    )


def _is_candidate(request):
    if request.method not in ("GET", "HEAD") or not settings.PAGE_CACHE_SECONDS:
        return False
    cookies = request.COOKIES
    if any(name in cookies for name in PERSONAL_COOKIES):
        return False
    uncached = (
        UNCACHED_BOOKING_PARAMETERS if _BOOKING.match(request.path_info) else UNCACHED_PARAMETERS
    )
    if any(request.GET.get(name) for name in uncached):
        return False
    return "HTTP_AUTHORIZATION" not in request.META and bool(_CANDIDATE.match(request.path_info))


def _storable(request, response):
    match = getattr(request, "resolver_match", None)
    if response.status_code != 200 or response.streaming or match is None:
        return False
    if match.view_name not in CACHEABLE_VIEWS or response.cookies:
        return False
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return False
    if _has_holes(response):
        return match.view_name in HOLES_VIEWS
    return not is_private(response) and not holds_csrf_token(response)


# --- pages with holes for each visitor's secrets --------------------------------------------
_FILLS_HOLES = "clinic.pagecache.fills_holes"


def fills_holes(request):
    """Whether the view may answer `request` with a page with holes (with_holes): only a
    request this middleware handles, which fills them in on the way out."""
    return request.META.get(_FILLS_HOLES, False)


def with_holes(response):
    """Mark `response` as rendered with CSRF_HOLE and KEY_HOLE for the visitor's secrets."""
    response.page_cache_holes = True
    return response


def _has_holes(response):
    return getattr(response, "page_cache_holes", False)


def _no_view(request):  # pragma: no cover  # CsrfViewMiddleware needs one; never called
    raise AssertionError


def fill_holes(request, response):
    """Put this visitor's own secrets in `response`'s holes: their CSRF token (a new CSRF
    cookie when they have none, renewed otherwise, by Django's CSRF middleware as a render
    would) and a fresh one-time submission key."""
    from django.middleware.csrf import CsrfViewMiddleware, get_token

    csrf = CsrfViewMiddleware(_no_view)
    csrf.process_request(request)
    content = response.content.replace(CSRF_HOLE.encode(), get_token(request).encode())
    response.content = content.replace(KEY_HOLE.encode(), uuid.uuid4().hex.encode())
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    csrf.process_response(request, response)
    response.page_cache_holes = False
    return response


def _lookup(key):
    """(current version, entry or None) for `key`: from this process's memory when it knows
    the version for sure (clinic.pagecopies), else from the cache, where the version is
    created when missing. An entry is (version, status, headers, body, schedule version or
    None, expiry as a Unix time)."""
    version = pagecopies.copies.version()
    if version is not None:
        entry = pagecopies.copies.entry(key, version)
        if entry is not None:
            return version, entry
    found = cache.get_many([VERSION_KEY, key])
    version = found.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(VERSION_KEY)
    if version is not None:
        pagecopies.copies.follow(VERSION_KEY)
    entry = found.get(key)
    if entry is not None and (len(entry) != 7 or entry[5] <= clock.time()):
        entry = None  # written by an older release, or outlived its page
    if entry is not None and entry[0] == version:
        pagecopies.copies.keep(key, entry)
    return version, entry


def current_version():
    """The page cache's version (None when the cache cannot say): for other caches of what
    a public page shows, retired with the pages."""
    version = pagecopies.copies.version()
    if version is None:
        try:
            version = cache.get(VERSION_KEY)
        except Exception:  # noqa: BLE001  # the cache is optional
            return None
    return version


def depends_on_schedule(response, *, version, until=None):
    """Mark a booking page's `response` as showing the schedule at `version` (the token the
    view read before its rows; None: it may not be stored) and true until `until` at most."""
    response.page_cache_schedule = (version, until)
    return response


# The WSGI environ key under which the handler leaves its lookup for the middleware.
_LOOKED_UP = "clinic.pagecache.looked_up"


class PageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _is_candidate(request):
            return self.get_response(request)
        request.META[_FILLS_HOLES] = True
        looked_up = request.META.pop(_LOOKED_UP, None)
        if looked_up is not None:
            key, version, entry = looked_up
        else:
            key = _key(request)
            try:
                version, entry = _lookup(key)
            except Exception:  # noqa: BLE001  # the cache is optional: render the page
                logger.warning("Page cache unavailable", exc_info=True)
                version, entry = None, None
        fresh = entry is not None and version is not None and entry[0] == version
        if fresh and _schedule_unchanged(entry):
            return _replay(request, entry)
        response = self.get_response(request)
        if version is not None and _storable(request, response):
            self._store(key, version, request, response)
        if _has_holes(response):
            fill_holes(request, response)
        response["X-Page-Cache"] = "miss"
        return response

    @staticmethod
    def _store(key, version, request, response):
        try:
            now = timezone.now()
            seconds = _seconds_to_live(now)
            schedule = None
            if request.resolver_match.view_name in SCHEDULE_VIEWS:
                schedule, until = getattr(response, "page_cache_schedule", (None, None))
                if schedule is None:
                    return
                if until is not None:
                    seconds = min(seconds, int((until - now).total_seconds()))
            if seconds <= 0:
                return
            headers = [
                (name, value)
                for name, value in response.items()
                if name.lower() not in _SKIPPED_HEADERS
            ]
            entry = (
                version,
                response.status_code,
                headers,
                response.content,
                schedule,
                clock.time() + seconds,
                _has_holes(response),
            )
            cache.set(key, entry, seconds)
            pagecopies.copies.keep(key, entry)
        except Exception:  # noqa: BLE001  # the cache is optional
            logger.warning("Could not store a page in the cache", exc_info=True)


def _replay(request, entry):
    """The response `entry` stored, as served to `request` (its holes filled)."""
    _version, status, headers, content, _schedule, _expires, holes = entry
    response = HttpResponse(content, status=status)
    for name, value in headers:
        response[name] = value
    if holes:
        fill_holes(request, response)
    response["X-Page-Cache"] = "hit"
    return response


def _schedule_unchanged(entry):
    """Whether `entry` shows the schedule as it is now (always, for a page that shows none)."""
    from booking.schedule_version import read_token

    if entry[4] is None:
        return True
    try:
        return read_token() == entry[4]
    except Exception:  # noqa: BLE001  # the database's trouble is the view's to answer
        return False


class WSGIHandler(wsgi.WSGIHandler):
    """Django's WSGI handler, answering a cached page before Django's request handling.

    A hit here costs a request object, the key and one cache read: no middleware, no
    request signals, no URL resolution. The entry is what the whole stack answered, so it
    carries every header a fresh render does; the request log gets its line as usual.
    Only GETs; anything else, or any trouble, goes the ordinary way, with the lookup passed
    on so it is not made twice.
    """

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            answer = self._from_cache(environ, start_response)
            if answer is not None:
                return answer
        return super().__call__(environ, start_response)

    def _from_cache(self, environ, start_response):
        from .logging import log_request

        started = clock.monotonic()
        try:
            request = self.request_class(environ)
            if not _is_candidate(request):
                return None
            key = _key(request)
            version, entry = _lookup(key)
        except Exception:  # noqa: BLE001  # the cache is optional: Django answers
            return None
        environ[_LOOKED_UP] = (key, version, entry)
        if entry is None or version is None or entry[0] != version:
            return None
        # A page showing free times costs one query here (no health check first: a broken
        # connection fails it, and Django's own handling, which replaces the connection,
        # answers instead).
        if not _schedule_unchanged(entry):
            return None
        status = entry[1]
        if entry[6]:  # holes: this visitor's secrets and CSRF cookie, as Django sends them
            response = _replay(request, entry)
            headers = [
                *response.items(),
                *(("Set-Cookie", c.OutputString()) for c in response.cookies.values()),
            ]
            content = response.content
        else:
            headers, content = [*entry[2], ("X-Page-Cache", "hit")], entry[3]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        log_request(request, status, started)
        return [content]


# Models whose rows a cached page shows; saving or deleting one retires every page.
SHOWN_ON_PUBLIC_PAGES = (
    "articles.Article",
    "articles.Topic",
    "articles.Author",
    "articles.Reference",
    "articles.ArticleRedirect",
    "articles.ArticleTranslation",
    "clinic.ClinicProfile",
    "clinic.OpeningHours",
    "clinic.Closure",
    "booking.Service",
    "booking.Therapist",
)


def connect_signals():
    """Retire cached pages whenever staff change anything a public page shows."""
    from django.apps import apps
    from django.db.models.signals import m2m_changed, post_delete, post_save

    for label in SHOWN_ON_PUBLIC_PAGES:
        model = apps.get_model(label)
        post_save.connect(retire_pages, sender=model, dispatch_uid=f"pagecache:save:{label}")
        post_delete.connect(retire_pages, sender=model, dispatch_uid=f"pagecache:delete:{label}")
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(
                retire_pages,
                sender=field.remote_field.through,
                dispatch_uid=f"pagecache:m2m:{label}.{field.name}",
            )
