"""Headers on every response: what browsers may use, what caches may keep, the admin's CSP.

Written here rather than taken from packages (django-permissions-policy): each is a few
lines with one fixed policy, and the site has nothing to configure per view.
"""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_cache_control

# The site uses none of the browser's powerful features, so it denies them all, to itself
# and to anything that might ever be framed or injected. Only features Chromium knows:
# an unknown name is logged as a console error on every page.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)

# Anonymous public pages: any cache may keep them, but must ask again before reusing them,
# so an edit shows at once (a later change may give them a short max-age).
PUBLIC = {"public": True, "max_age": 0, "must_revalidate": True}
# Anything about one person: kept by no cache, not even the browser's history cache.
PERSONAL = {"private": True, "no_store": True}


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


class CacheControlMiddleware:
    """Every HTML response says what may be cached, unless its view already said so.

    It is personal (private, no-store) when it answers a form post, sets a cookie (a
    session, a CSRF token, a message) or is for a signed-in user; otherwise it is the same
    for everyone and public. Must sit above the session, CSRF and message middleware, so
    it sees the cookies they set.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        user = getattr(request, "user", None)
        personal = (
            request.method not in ("GET", "HEAD")
            or response.cookies
            or (user is not None and user.is_authenticated)
        )
        patch_cache_control(response, **(PERSONAL if personal else PUBLIC))
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, adding CONTENT_SECURITY_POLICY_ADMIN on the admin's URLs only.

    The public site's policy allows nothing inline; the admin's own widgets and templates
    set a few inline style attributes, so its pages get exactly that on top, no more.
    """

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(f"/{settings.ADMIN_URL}"):
            parts.update = {**settings.CONTENT_SECURITY_POLICY_ADMIN, **(parts.update or {})}
        return parts


class UrlLanguageMiddleware:
    """Activates the language named by the path's prefix (/es/...), English without one.

    Django's LocaleMiddleware would fall back to a cookie or Accept-Language for an
    unprefixed path and add Vary on them; here an address always shows the same page, so
    the page cache and any shared cache keep one copy per URL. Sits before URL resolution,
    which reads the active language to match the /es/ prefix. The thread's language is
    put back afterwards, so nothing run after a Spanish request (a test's reverse(), the
    next request's early middleware) inherits it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = translation.get_language_from_path(request.path_info)
        with translation.override(language or settings.LANGUAGE_CODE):
            request.LANGUAGE_CODE = translation.get_language()
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


class BusyMiddleware:
    """clinic.locking.Busy from any view becomes clinic.views.busy's 503, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from .locking import Busy
        from .views import busy

        if isinstance(exception, Busy):
            return busy(request)
        return None
