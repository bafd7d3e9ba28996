"""The one settings module, read from the environment.

Nothing set gives the embedded default: SQLite under var/, Celery running tasks
eagerly, mail printed to the console, DEBUG on. Production sets DATABASE_URL, REDIS_URL (or
CELERY_BROKER_URL), EMAIL_URL, SECRET_KEY and ALLOWED_HOSTS. A setting that is
wrong stops start-up with one line naming the variable.
"""

import re
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()


def _fail(variable, why):
    """Stop start-up with one clear line instead of a traceback."""
    raise SystemExit(f"Configuration error: {variable} {why}")


def _read(variable, reader, **kwargs):
    try:
        return reader(variable, **kwargs)
    except SystemExit:
        raise
    except Exception as exc:  # environ raises many types for a malformed value
        _fail(variable, f"is not valid ({exc.__class__.__name__}: {exc})")


def _bool(variable, default):
    raw = env.str(variable, default="").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    _fail(variable, f"must be true or false, not {raw!r}")


# The embedded default (no DATABASE_URL) is a developer's machine, so DEBUG defaults on
# there and `manage.py` works with nothing set; anywhere else it defaults off.
DEBUG = _bool("DEBUG", default="DATABASE_URL" not in env)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        _fail("SECRET_KEY", "must be set when DEBUG is off (or set DEBUG=true for development)")
    SECRET_KEY = "insecure-development-key-never-use-in-production"
# Earlier keys, newest first: links signed with them (unsubscribe, manage a booking) keep
# working while a new SECRET_KEY is rolled out. Drop a key once its links have expired.
SECRET_KEY_FALLBACKS = [
    key.strip() for key in env.str("SECRET_KEY_FALLBACKS", default="").split(",") if key.strip()
]

if not DEBUG and "SITE_URL" not in env:
    # Links in emails, feeds and sitemaps would point at a development address.
    _fail("SITE_URL", "must be set when DEBUG is off (the public address, https://...)")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.netloc:
    _fail("SITE_URL", "must be an absolute http(s) address such as https://clinic.example")

ALLOWED_HOSTS = _read(
    "ALLOWED_HOSTS", env.list, default=[_site.hostname, "localhost", "127.0.0.1", "[::1]"]
)
if not ALLOWED_HOSTS or not all(ALLOWED_HOSTS):
    _fail("ALLOWED_HOSTS", "must name at least one host (comma-separated, no empty entries)")
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

ADMIN_URL = env.str("ADMIN_URL", default="admin/").strip("/") + "/"

INSTALLED_APPS = [
    "clinic.admin_site.ClinicAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "csp",
    "phonenumber_field",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "clinic",
    "articles",
    "booking",
    "newsletter",
]

MIDDLEWARE = [
    # First: one log line for every response, whichever middleware made it.
    "clinic.logging.RequestLogMiddleware",
    # Whole public pages for anonymous visitors, stored with every header the stack below
    # adds (security, permissions, caching), so a hit needs none of it; clinic.wsgi answers
    # most hits before Django's request handling even starts.
    "clinic.pagecache.PageCacheMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "clinic.middleware.PermissionsPolicyMiddleware",
    # Above sessions, CSRF and messages (a response that sets their cookies is personal).
    "clinic.middleware.CacheControlMiddleware",
    # Inside the page cache, so a hit is stored trimmed and compressed (never with a secret).
    "clinic.compression.CompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language from the URL's prefix alone (not Django's LocaleMiddleware, which guesses).
    "clinic.middleware.UrlLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks request.user verified when the session was signed in with a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A write that waited too long for a row lock answers "busy, please try again" (503).
    "clinic.middleware.BusyMiddleware",
    # django-csp's, with the admin's few extra allowances (CONTENT_SECURITY_POLICY_ADMIN).
    "clinic.middleware.ContentSecurityPolicyMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # A view's database outage (down, hung, past a timeout) becomes a 503 "please call" page.
    "clinic.unavailable.DatabaseUnavailableMiddleware",
    # Turns django-ratelimit's refusal into RATELIMIT_VIEW's friendly 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Last, as django-axes asks: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "clinic.context_processors.clinic",
            ],
        },
    },
    {
        # Plain-text emails: no HTML escaping, or "Pat <3" would arrive as "Pat &lt;3".
        "NAME": "text",
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"autoescape": False},
    },
]

# --- Database -----------------------------------------------------------------
_KNOWN_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")
# Tests get a file, not a shared in-memory database: its table locks ignore the timeout,
# so threads racing for a row would fail at once instead of waiting their turn.
SQLITE_TEST = {"NAME": str(VAR_DIR / "test.sqlite3")}
SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock when a transaction starts, so two writers
    # queue instead of failing with "database is locked" half-way through.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if "DATABASE_URL" in env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # environ warns before we can say it in one line
        _db = _read("DATABASE_URL", env.db_url)
    if _db.get("ENGINE") not in _KNOWN_ENGINES:
        _fail("DATABASE_URL", "has an unknown scheme (use postgres://... or sqlite:///...)")
    if _db["ENGINE"].endswith("sqlite3"):
        _db["OPTIONS"] = {**SQLITE_OPTIONS, **_db.get("OPTIONS", {})}
        _db.setdefault("TEST", SQLITE_TEST)
    elif not _db.get("NAME"):
        _fail("DATABASE_URL", "names no database (postgres://user@host:5432/NAME)")
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        "OPTIONS": SQLITE_OPTIONS,
        "TEST": SQLITE_TEST,
    }
# PostgreSQL paused, unreachable or overloaded must not hang a request (a sync gunicorn
# worker would be killed at its 30 s timeout): every wait on the database is bounded, and
# clinic.db answers the patient with a 503 "please call" page instead.
DATABASE_CONNECT_TIMEOUT = _read("DATABASE_CONNECT_TIMEOUT", env.int, default=2)
if not 2 <= DATABASE_CONNECT_TIMEOUT <= 30:
    _fail("DATABASE_CONNECT_TIMEOUT", "must be whole seconds from 2 to 30 (libpq's minimum is 2)")
DATABASE_STATEMENT_TIMEOUT = _read("DATABASE_STATEMENT_TIMEOUT", env.float, default=3.0)
DATABASE_LOCK_TIMEOUT = _read("DATABASE_LOCK_TIMEOUT", env.float, default=2.0)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = _read(
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", env.float, default=10.0
)
for _name in (
    "DATABASE_STATEMENT_TIMEOUT",
    "DATABASE_LOCK_TIMEOUT",
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
):
    if not 0 <= vars()[_name] <= 3600:
        _fail(_name, "must be a number of seconds from 0 (no limit) to 3600 (e.g. 3)")
# Server-side limits, sent as connection options (0 turns one off).
POSTGRES_OPTIONS = {
    "connect_timeout": DATABASE_CONNECT_TIMEOUT,
    "options": " ".join(
        f"-c {name}={round(seconds * 1000)}"
        for name, seconds in (
            ("statement_timeout", DATABASE_STATEMENT_TIMEOUT),
            ("lock_timeout", DATABASE_LOCK_TIMEOUT),
            ("idle_in_transaction_session_timeout", DATABASE_IDLE_IN_TRANSACTION_TIMEOUT),
        )
    ),
}
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend plus a client-side deadline and a breaker (clinic.db).
    _db["ENGINE"] = "clinic.db"
    _extra = _db.get("OPTIONS", {})
    _db["OPTIONS"] = {
        **POSTGRES_OPTIONS,
        **_extra,
        "options": f"{POSTGRES_OPTIONS['options']} {_extra.get('options', '')}".strip(),
    }
# On the "we can't take bookings online right now" page when the database is down and no
# copy of the clinic's profile is at hand (a fresh process): the phone patients should call.
CLINIC_PHONE_FALLBACK = env.str("CLINIC_PHONE_FALLBACK", default="").strip()

# Connections outlive a request in production (a new PostgreSQL connection costs more than
# most pages); the health check replaces one the server dropped meanwhile.
_db.setdefault("CONN_MAX_AGE", _read("CONN_MAX_AGE", env.int, default=0 if DEBUG else 60))
_db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and Celery ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and urlsplit(REDIS_URL).scheme not in ("redis", "rediss"):
    _fail("REDIS_URL", "must start with redis:// or rediss://")

# The cache's own Redis, apart from the broker's: the cache may evict (maxmemory with
# allkeys-lru), the broker must never (noeviction), and one Redis has one policy. Empty: the
# cache uses REDIS_URL, as the broker does unless CELERY_BROKER_URL says otherwise.
CACHE_URL = env.str("CACHE_URL", default="").strip()
if CACHE_URL and urlsplit(CACHE_URL).scheme not in ("redis", "rediss"):
    _fail("CACHE_URL", "must start with redis:// or rediss://")

# Seconds to wait for Redis (cache, health check, broker) to connect or answer. Redis
# answers in a millisecond; one that takes longer is treated as down, so a page never
# waits on it (the cache becomes a miss, a published email waits for the sweep).
REDIS_TIMEOUT = _read("REDIS_TIMEOUT", env.float, default=0.2)
if not 0 < REDIS_TIMEOUT <= 5:
    _fail("REDIS_TIMEOUT", "must be a number of seconds above 0 and at most 5 (e.g. 0.2)")

if CACHE_URL or REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, but Redis down or hanging is a logged miss, not a 500.
            "BACKEND": "clinic.cache.ResilientRedisCache",
            "LOCATION": CACHE_URL or REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="clinic"),
            "OPTIONS": {
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Longest a whole public page is kept for anonymous visitors (clinic.pagecache); saving
# anything it shows retires it at once. 0 turns the page cache off.
PAGE_CACHE_SECONDS = _read("PAGE_CACHE_SECONDS", env.int, default=600)
if PAGE_CACHE_SECONDS < 0:
    _fail("PAGE_CACHE_SECONDS", "must be a number of seconds, 0 or more (0 turns it off)")
# The rate limits count in the cache: with the cache unreachable a patient may still book
# or sign up (limits pause) rather than every POST being refused.
RATELIMIT_FAIL_OPEN = True
# Sessions (staff only) live in the database: they survive a Redis outage, and a log-out
# during one cannot be undone by a stale cached copy when Redis returns (cached_db could).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Flash messages live in that session, never in the signed-but-readable messages cookie:
# one of them is health advice (clinic.messages).
MESSAGE_STORAGE = "clinic.messages.ServerSideMessageStorage"

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL) or "memory://"
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# A task is acknowledged only once it finished, and handed back to the queue if
# its worker dies: tasks are written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_TASK_TIME_LIMIT = 60
# A broker that is down or hanging must not stall the request that queued the task: each
# try is bounded by REDIS_TIMEOUT to connect and to send; one immediate retry (a pooled
# connection gone stale after a Redis restart), then the outbox sweep republishes.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": REDIS_TIMEOUT,
    "socket_timeout": REDIS_TIMEOUT,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Bulk mail (newsletters) is published to its own queue so it never delays a booking
# confirmation on the default queue ("celery"); workers consume both: -Q celery,bulk.
CELERY_BULK_QUEUE = env.str("CELERY_BULK_QUEUE", default="bulk").strip() or "bulk"
# The default queue's name; only tests change it (each run gets its own, worker included).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="celery").strip() or "celery"
CELERY_BEAT_SCHEDULE = {
    "republish-due-emails": {
        "task": "clinic.tasks.republish_due_emails",
        "schedule": 120.0,
    },
    # Reminders are due from 24 hours before a visit, so a run every 10 minutes sends each
    # within 10 minutes of that mark. A run not started by the next one is dropped, not stacked.
    "send-due-reminders": {
        "task": "booking.tasks.send_due_reminders",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    # A waitlist hold that ran out goes to the next in line within a minute; a worker that
    # was down catches up on its first run (nothing depends on a countdown surviving).
    "end-expired-waitlist-holds": {
        "task": "booking.tasks.end_expired_holds",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "purge-unconfirmed-newsletter-sign-ups": {
        "task": "newsletter.tasks.purge_unconfirmed",
        "schedule": 6 * 60 * 60.0,
    },
    # Patient data kept short (the Retention settings below); a missed run catches up.
    "apply-retention": {
        "task": "clinic.tasks.apply_retention",
        "schedule": 6 * 60 * 60.0,
    },
}

# --- Email ----------------------------------------------------------------------
if "EMAIL_URL" in env:
    vars().update(_read("EMAIL_URL", env.email_url))
else:
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
    )
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"clinic@{_site.hostname}")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 20
# Minutes a new or republished email waits before the sweep republishes it (its task may
# still be on its way); also the first step of the back-off after a failed try.
OUTBOX_REQUEUE_AFTER_MINUTES = _read("OUTBOX_REQUEUE_AFTER_MINUTES", env.int, default=5)
OUTBOX_MAX_ATTEMPTS = _read("OUTBOX_MAX_ATTEMPTS", env.int, default=8)
# Seconds a worker's claim on an email lasts; it renews the claim every third of that while
# the mail server is still answering, so only a worker that died leaves it to run out, and
# the next sweep after that resends the email (with the same Message-ID).
OUTBOX_SEND_LEASE_SECONDS = _read("OUTBOX_SEND_LEASE_SECONDS", env.int, default=60)
if OUTBOX_SEND_LEASE_SECONDS < 1:
    _fail("OUTBOX_SEND_LEASE_SECONDS", "must be a number of seconds, 1 or more (e.g. 60)")

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# django-axes checks for a lockout before any password is compared.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Staff accounts -------------------------------------------------------------
# Two-factor sign-in (TOTP) for the admin: required in production, off on the embedded
# default so `make run`'s demo login works with a password alone.
STAFF_REQUIRE_2FA = _bool("STAFF_REQUIRE_2FA", default=not DEBUG)
# The issuer an authenticator app shows next to the code.
OTP_TOTP_ISSUER = _site.hostname
# Wrong codes slow the next try down (1 s, 2 s, 4 s... doubling), so a known password
# does not let anyone run through the million codes.
OTP_TOTP_THROTTLE_FACTOR = 1
# django-axes locks a sign-in after 5 failures in a row for 15 minutes. It locks the pair
# (username, client address), not the username alone: an attacker could otherwise lock
# every staff member out from everywhere by guessing at their names; and not the address
# alone, or one colleague's typos would lock out everyone behind the clinic's router.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address as the proxy sets it, as the booking rate limit reads it.
AXES_CLIENT_IP_CALLABLE = "clinic.auth.client_address"
AXES_LOCKOUT_CALLABLE = "clinic.auth.locked_out"
# Masked in what axes stores and logs of a form (the password always is), the code too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]


# --- Internationalisation -------------------------------------------------------
# Patients read English or Spanish; staff work in English. The language comes from the URL
# only (English unprefixed, Spanish under /es/: clinic.middleware.UrlLanguageMiddleware),
# never from a cookie or Accept-Language, so a page is the same for everyone at its address.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
# Where the clinic is: the region of its locales (og:locale es_US, schema.org inLanguage es-US).
LOCALE_REGION = "US"
LOCALE_PATHS = [BASE_DIR / "locale"]
# The clinic's own time zone, the one place it is named: pages, emails, beat schedules.
TIME_ZONE = env.str("TIME_ZONE", default="America/Los_Angeles").strip()
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    _fail("TIME_ZONE", f"is not a known time zone ({TIME_ZONE!r}); use e.g. America/Los_Angeles")
CELERY_TIMEZONE = TIME_ZONE
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Uploads. Several app servers must share them: mount MEDIA_ROOT on shared storage (NFS, a
# cloud file share), or name another Django storage class and its options (JSON).
MEDIA_STORAGE_BACKEND = env.str(
    "MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
).strip()
if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", MEDIA_STORAGE_BACKEND):
    _fail("MEDIA_STORAGE_BACKEND", "must be a dotted path to a storage class")
MEDIA_STORAGE_OPTIONS = _read("MEDIA_STORAGE_OPTIONS", env.json, default={})
if not isinstance(MEDIA_STORAGE_OPTIONS, dict):
    _fail("MEDIA_STORAGE_OPTIONS", 'must be a JSON object, e.g. {"location": "/srv/media"}')
# Uploads on S3-compatible object storage (AWS S3, MinIO, Ceph, R2...), shared by every app
# server: set the bucket, and the endpoint for anything but AWS. Credentials come from
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the machine's role), as boto3 reads them.
# The bucket stays private; pages link to /media/, which checks who may see each file.
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="").strip()
MEDIA_S3_ENDPOINT_URL = env.str("MEDIA_S3_ENDPOINT_URL", default="").strip()
if MEDIA_S3_ENDPOINT_URL and urlsplit(MEDIA_S3_ENDPOINT_URL).scheme not in ("http", "https"):
    _fail("MEDIA_S3_ENDPOINT_URL", "must be an http(s) address, e.g. https://s3.example.net")
MEDIA_S3_REGION = env.str("MEDIA_S3_REGION", default="").strip()
MEDIA_S3_PREFIX = env.str("MEDIA_S3_PREFIX", default="").strip().strip("/")
# Public images (live articles' sizes, active therapists' photos) as a redirect to a signed
# address in the bucket, valid this long, instead of through the app server: the bucket's
# origin is then allowed in the Content-Security-Policy's img-src.
MEDIA_S3_REDIRECT_PUBLIC = _bool("MEDIA_S3_REDIRECT_PUBLIC", default=False)
MEDIA_S3_SIGNED_SECONDS = _read("MEDIA_S3_SIGNED_SECONDS", env.int, default=600)
if not 60 <= MEDIA_S3_SIGNED_SECONDS <= 7 * 24 * 3600:
    _fail("MEDIA_S3_SIGNED_SECONDS", "must be between 60 seconds and a week (e.g. 600)")
if MEDIA_S3_REDIRECT_PUBLIC and not MEDIA_S3_BUCKET:
    _fail("MEDIA_S3_REDIRECT_PUBLIC", "needs MEDIA_S3_BUCKET (uploads on object storage)")
if MEDIA_S3_BUCKET:
    if "MEDIA_STORAGE_BACKEND" in env:
        _fail("MEDIA_STORAGE_BACKEND", "cannot be set with MEDIA_S3_BUCKET: choose one")
    MEDIA_STORAGE_BACKEND = "clinic.storage.S3MediaStorage"
    MEDIA_STORAGE_OPTIONS = {
        "bucket_name": MEDIA_S3_BUCKET,
        "endpoint_url": MEDIA_S3_ENDPOINT_URL or None,
        "region_name": MEDIA_S3_REGION or None,
        "location": MEDIA_S3_PREFIX,
        # Private objects, a new name for every upload (never another's file overwritten),
        # and signed addresses that expire.
        "default_acl": None,
        "file_overwrite": False,
        "querystring_auth": True,
        "querystring_expire": MEDIA_S3_SIGNED_SECONDS,
        **MEDIA_STORAGE_OPTIONS,
    }
# Where the browser is sent for a public image with MEDIA_S3_REDIRECT_PUBLIC (its origin).
MEDIA_IMG_SOURCES = []
if MEDIA_S3_REDIRECT_PUBLIC:
    if MEDIA_S3_ENDPOINT_URL:  # path-style addresses on the endpoint itself
        MEDIA_STORAGE_OPTIONS.setdefault("addressing_style", "path")
        _endpoint = urlsplit(MEDIA_S3_ENDPOINT_URL)
        MEDIA_IMG_SOURCES = [f"{_endpoint.scheme}://{_endpoint.netloc}"]
    else:
        _region = f".{MEDIA_S3_REGION}" if MEDIA_S3_REGION else ""
        MEDIA_IMG_SOURCES = [f"https://{MEDIA_S3_BUCKET}.s3{_region}.amazonaws.com"]
STORAGES = {
    "default": {"BACKEND": MEDIA_STORAGE_BACKEND, "OPTIONS": MEDIA_STORAGE_OPTIONS},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

PHONENUMBER_DEFAULT_REGION = "US"
PHONENUMBER_DB_FORMAT = "E164"

# Booking POSTs per client address; past it the patient sees a friendly 429 page.
BOOKING_RATE_LIMIT = env.str("BOOKING_RATE_LIMIT", default="20/h").strip()
if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", BOOKING_RATE_LIMIT):
    _fail("BOOKING_RATE_LIMIT", "must look like 20/h (a count per s, m, h or d)")
NEWSLETTER_RATE_LIMIT = env.str("NEWSLETTER_RATE_LIMIT", default="10/h").strip()
if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", NEWSLETTER_RATE_LIMIT):
    _fail("NEWSLETTER_RATE_LIMIT", "must look like 10/h (a count per s, m, h or d)")
# Every sign-up answer takes at least this long, so timing cannot tell who subscribes.
NEWSLETTER_SIGNUP_SECONDS = _read("NEWSLETTER_SIGNUP_SECONDS", env.float, default=0.3)
RATELIMIT_VIEW = "clinic.views.rate_limited"
# A form sent without its CSRF cookie gets a page in the visitor's language that keeps it.
CSRF_FAILURE_VIEW = "clinic.views.csrf_failure"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Retention ------------------------------------------------------------------
# Patient data is kept short (clinic.personal_data.apply_retention, on the beat): the health
# answers go this many days after the visit, the whole patient this many months after it.
INTAKE_RETENTION_DAYS = _read("INTAKE_RETENTION_DAYS", env.int, default=30)
if INTAKE_RETENTION_DAYS < 0:
    _fail("INTAKE_RETENTION_DAYS", "must be a number of days, 0 or more (e.g. 30)")
APPOINTMENT_RETENTION_MONTHS = _read("APPOINTMENT_RETENTION_MONTHS", env.int, default=24)
if APPOINTMENT_RETENTION_MONTHS < 1:
    _fail("APPOINTMENT_RETENTION_MONTHS", "must be a number of months, 1 or more (e.g. 24)")

# --- Security -------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _site.scheme == "https" and not DEBUG:
    # The site is https only: plain http is redirected (but for the load balancer's health
    # probe), cookies never travel over http, browsers are told to remember it (HSTS).
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, default=365 * 24 * 60 * 60)
    if SECURE_HSTS_SECONDS < 0:
        _fail("SECURE_HSTS_SECONDS", "must be 0 (off) or a number of seconds (e.g. 31536000)")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Asking browsers to hard-code the domain as https-only is its owner's decision (and
    # a submission to hstspreload.org), so it is off until asked for; the deploy check's
    # reminder about it (security.W021) is silenced only while it is off.
    SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Where TLS ends at a proxy, the header it sets to say the visitor used https, as
    # "Header-Name: value"; empty when gunicorn itself is reached over https. Trust it only
    # behind a proxy that always sets it, or a visitor could claim https over http.
    _proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto: https")
    if _proxy_header.strip():
        _name, _, _value = _proxy_header.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9-]+", _name.strip()) or not _value.strip():
            _fail("SECURE_PROXY_SSL_HEADER", "must look like X-Forwarded-Proto: https, or be empty")
        SECURE_PROXY_SSL_HEADER = (
            "HTTP_" + _name.strip().upper().replace("-", "_"),
            _value.strip(),
        )

# Every page and asset comes from this site: nothing may load from another host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *MEDIA_IMG_SOURCES],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}
# Added on the admin's pages only (clinic.middleware.ContentSecurityPolicyMiddleware): a few
# of its widgets and templates (and django-simple-history's) set inline style attributes.
# No inline <style> or script, nothing from elsewhere.
CONTENT_SECURITY_POLICY_ADMIN = {"style-src-attr": [UNSAFE_INLINE]}

# --- Logs -----------------------------------------------------------------------
# One JSON line per request and per task on stdout (clinic.logging): no query strings,
# tokens, email addresses, phone numbers or intake answers; a client's error is one line.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    _fail("LOG_LEVEL", "must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "clinic.logging.JSONFormatter"}},
    "filters": {"client_errors": {"()": "clinic.logging.ClientErrorFilter"}},
    "handlers": {
        "stdout": {
            "class": "clinic.logging.StdoutHandler",
            "formatter": "json",
            "filters": ["client_errors"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers (console in DEBUG, mail to ADMINS, runserver's lines) go:
        # everything reaches the one handler above, and its filter and formatter.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # Queries carry their parameters, and a template's DEBUG lines print its whole
        # context (a patient's booking): never logged, even with LOG_LEVEL=DEBUG.
        "django.db.backends": {"level": "INFO"},
        "django.template": {"level": "INFO"},
        # Celery's "received" and "succeeded: <result>" lines: the task line replaces them.
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # redis-py's line for every pub/sub message (the page cache's announcements,
        # clinic.pagecopies): one per page-cache bump in every process, saying nothing new.
        "push_response": {"level": "INFO"},
    },
}
