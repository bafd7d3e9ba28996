"""Site-wide pages: home, health check, robots.txt."""

import logging
import mimetypes
import re

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections
from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since

from articles.images import SIZE_NAME, size_names
from articles.models import Article
from booking.models import Service, Therapist

from .db import database_deadline
from .seo import clinic_jsonld
from .services import get_clinic_profile
from .unavailable import current_exception_is_database_unavailable, database_unavailable

logger = logging.getLogger(__name__)

# How long the health check waits for an answer from a database it is connected to.
HEALTH_DATABASE_SECONDS = 1.5


@require_safe
def home(request):
    profile = get_clinic_profile()
    latest = Article.objects.published().for_cards()[:3]
    return render(
        request,
        "clinic/home.html",
        {
            # What the clinic offers, each a way into booking (two queries, however many).
            "treatments": Service.objects.bookable(),
            "therapists": Therapist.objects.bookable(),
            "latest_articles": latest,
            "jsonld": clinic_jsonld(profile) if profile else None,
        },
    )


def _check_database():
    # Bounded on its own: connecting by DATABASE_CONNECT_TIMEOUT, the query by this deadline
    # (clinic.db), so a hung PostgreSQL is reported, not waited for.
    with database_deadline(HEALTH_DATABASE_SECONDS), connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis():
    import redis

    client = redis.Redis.from_url(
        settings.CACHE_URL or settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
        retry=None,  # one try: the check answers within REDIS_TIMEOUT, never hangs
    )
    try:
        client.ping()
    finally:
        client.close()


def _check_broker():
    from .celery import app

    # The broker's own timeouts (CELERY_BROKER_TRANSPORT_OPTIONS) bound this; no retries.
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
        if connection.transport_cls in ("redis", "rediss"):
            connection.default_channel.client.ping()


@never_cache
@require_safe
def health(request):
    """JSON status of the database, Redis and a separate broker: 200 all up, 503 otherwise.

    Each check is bounded by short timeouts (REDIS_TIMEOUT), so a hanging Redis makes this
    answer 503 quickly instead of hanging the load balancer's probe.
    """
    checks = {"database": _check_database}
    cache_redis = settings.CACHE_URL or settings.REDIS_URL
    if cache_redis:
        checks["redis"] = _check_redis  # the cache's Redis
    broker = settings.CELERY_BROKER_URL
    if not settings.CELERY_TASK_ALWAYS_EAGER and broker != cache_redis:
        checks["broker"] = _check_broker
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "down"; the reason goes to the log
            logger.warning("Health check %s failed: %s", name, exc)
            results[name] = "down"
    healthy = all(state == "ok" for state in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", "checks": results}, status=200 if healthy else 503
    )


def server_error(request):
    """The styled 500 page, with the clinic's phone when the cache or database still answers.

    A database outage that surfaced outside a view (a middleware, a template) is not a bug:
    it gets the 503 page, as one inside a view does (clinic.unavailable).
    """
    if current_exception_is_database_unavailable():
        return database_unavailable(request)
    try:
        return render(request, "500.html", status=500)
    except Exception:  # the failure may be the database itself: fall back to the bare page
        logger.exception("Could not render the full error page")
        return HttpResponseServerError(render_to_string("500.html"))


# A name as the site's uploads are stored. Anything else (too long, "..", NUL, slashes sent
# encoded, another folder) is a 404 before the filesystem or the database sees it.
PHOTO_SIZE_NAME = re.compile(r"(?P<stem>therapists/[\w-]{1,80})-[0-9]{2,4}\.webp")
MEDIA_NAME = re.compile(r"(?:articles/hero/(?:sizes/[0-9]{1,18}/)?|therapists/)[\w-][\w.-]{0,99}")


def _media_audience(path, *, staff):
    """Whom the uploaded file `path` may be shown to: "public", "staff" or None (a 404).

    The database decides, as it does for the pages: a hero's sizes while its article is
    live, a bookable therapist's photo. A draft's sizes and every hero original (pages
    show only the sizes) are for staff; files nothing points at any more, for no one.
    """
    if not MEDIA_NAME.fullmatch(path) or ".." in path:
        return None
    if path.startswith("therapists/"):
        # A photo, or one of its sizes (<photo's stem>-<width>.webp, made from it).
        size = PHOTO_SIZE_NAME.fullmatch(path)
        owner = Q(photo__startswith=f"{size['stem']}.") if size else Q(photo=path)
        therapist = Therapist.objects.filter(owner).first()
        if size and therapist and path not in therapist.photo_sizes.values():
            return None
        if therapist is None or not (therapist.is_active or staff):
            return None
        return "public" if therapist.is_active else "staff"
    if match := SIZE_NAME.fullmatch(path):
        article = Article.objects.filter(pk=int(match["pk"])).first()
        if article is None or path not in size_names(article.hero_renditions):
            return None
        if article.is_live():
            return "public"
        return "staff" if staff else None
    # An original, of any version (staff open them when reverting): never looked up for
    # the public, so a stranger's guesses cost no query.
    if staff and Article.history.filter(hero_image=path).exists():
        return "staff"
    return None


@require_safe
def media(request, path):
    """Uploaded images, served by the site itself (few and small) to whom may see them.

    Checking at each request, rather than moving files on publish, keeps one address per
    image: it answers 404 to the public while its article is a draft (or scheduled, or
    taken down) and 200 from the moment the article is live, with no step to forget.
    The files come from the storage (MEDIA_ROOT, or the S3 bucket several app servers
    share); with MEDIA_S3_REDIRECT_PUBLIC a public file is a redirect to a short-lived
    signed address in the bucket instead, so the app server never carries its bytes.
    """
    audience = _media_audience(path, staff=request.user.is_staff)
    if audience is None:
        raise Http404
    if audience == "public" and settings.MEDIA_S3_REDIRECT_PUBLIC:
        response = HttpResponseRedirect(
            default_storage.signed_url(path, expire=settings.MEDIA_S3_SIGNED_SECONDS)
        )
        # Browsers may reuse the redirect while its signature is still good.
        response["Cache-Control"] = f"private, max-age={settings.MEDIA_S3_SIGNED_SECONDS // 2}"
        return response
    response = _stored_file(request, path)
    # A public image may be cached a while; one only staff may see, not at all.
    response["Cache-Control"] = (
        "public, max-age=3600" if audience == "public" else "private, no-store"
    )
    return response


def _stored_file(request, path):
    """`path` from the default storage, streamed; 304 when the browser's copy is current."""
    try:
        modified = default_storage.get_modified_time(path)
    except FileNotFoundError:  # a row names a file that is gone
        raise Http404 from None
    except ClientError as exc:  # the bucket's answer (MEDIA_S3_BUCKET): no such key, or refused
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            logger.warning("Object storage refused %s: %s", path, exc)
        raise Http404 from None
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), modified.timestamp()):
        return HttpResponseNotModified()
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type)
    response["Last-Modified"] = http_date(modified.timestamp())
    return response


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says (the admin names none)."""
    return redirect(static("img/favicon.svg"))


@require_safe
def robots_txt(request):
    lines = [
        "User-agent: *",
        # ADMIN_URL is left out on purpose: naming it here would publish a secret path.
        "Disallow: /healthz",
        f"Sitemap: {settings.SITE_URL}{reverse('sitemap')}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")


def rate_limited(request, exception):
    """django-ratelimit's view (RATELIMIT_VIEW): a friendly 429 with the clinic's phone."""
    return render(request, "429.html", status=429)


def busy(request):
    """A write that waited too long for a lock (clinic.locking.Busy): 503, try again; the
    admin's own page for staff. Nothing was changed, so going back and resending is safe."""
    staff = request.path_info.startswith(f"/{settings.ADMIN_URL}")
    response = render(request, "admin/busy.html" if staff else "busy.html", status=503)
    response["Retry-After"] = "5"
    response["Cache-Control"] = "private, no-store"
    return response


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a form came back without the cookie that shows it is this site's
    (cookies blocked, or a page left open past its cookie). A 403 in the visitor's language
    instead of Django's technical page, keeping what they typed, with a fresh token to send
    it again."""
    from .unavailable import posted_fields

    context = {"posted": posted_fields(request), "retry_url": request.get_full_path()}
    response = render(request, "403_csrf.html", context, status=403)
    response["Cache-Control"] = "private, no-store"  # it may hold what a patient typed
    return response
