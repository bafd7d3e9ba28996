"""Security and caching headers on a page of each app, with the settings production gets.

The production values are read from clinic/settings.py in a subprocess (SITE_URL https,
DEBUG off), then applied here, so these tests follow the settings module, not a copy of it.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from articles.models import Article

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SECURITY_SETTINGS = [
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]
PUBLIC = "public, max-age=0, must-revalidate"


def manage(*command, **environment):
    """manage.py with production's environment (plus `environment`), nothing of the shell's."""
    unset = (
        *("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY", "SITE_URL"),
        "DJANGO_ALLOW_ASYNC_UNSAFE",  # the browser tests set it in this process; no server does
    )
    env = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith("SECURE_")}
    env.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SITE_URL": "https://clinic.example",
            # Any DATABASE_URL means production (DEBUG off); neither command opens it.
            "DATABASE_URL": "sqlite:////nonexistent/clinic.sqlite3",
            **environment,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_settings(**environment):
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{name: getattr(s, name) for name in {SECURITY_SETTINGS!r}}}))"
    )
    result = manage("shell", "-c", code, **environment)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    if values["SECURE_PROXY_SSL_HEADER"]:
        values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.fixture(scope="module")
def production():
    return production_settings()


@pytest.fixture
def in_production(settings, production):
    for name, value in production.items():
        setattr(settings, name, value)
    return settings


def csp(response):
    """{directive: [sources]} from the Content-Security-Policy header."""
    policy = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


@pytest.fixture
def pages(seeded, therapist, service, booking_rules, at):
    start = at(10)
    article = Article.objects.published().first()
    return {
        "home": ("/", PUBLIC),
        "article": (article.get_absolute_url(), PUBLIC),
        "booking step": (reverse("booking:start"), PUBLIC),
        "booking details": (
            reverse(
                "booking:details", args=[service.slug, therapist.slug, start.date(), start.time()]
            ),
            "private, no-store",
        ),
        "newsletter": (reverse("newsletter:signup"), PUBLIC),
        "admin login": (reverse("admin:login"), "private, no-store"),
    }


def test_every_security_header_on_a_page_of_each_app(client, in_production, pages):
    for name, (path, cache_control) in pages.items():
        response = client.get(path, secure=True)
        assert response.status_code == 200, name
        assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["X-Frame-Options"] == "DENY", name
        assert response["Referrer-Policy"] == "same-origin", name
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", name
        features = dict(rule.split("=") for rule in response["Permissions-Policy"].split(", "))
        for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
            assert features[feature] == "()", (name, feature)
        policy = csp(response)
        assert policy["default-src"] == ["'self'"], name
        assert policy["script-src"] == ["'self'"], name
        assert policy["style-src"] == ["'self'"], name
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        # Every directive in Cache-Control the page needs (never_cache adds more).
        wanted = {part.strip() for part in cache_control.split(",")}
        got = {part.strip() for part in response["Cache-Control"].split(",")}
        assert wanted <= got, (name, response["Cache-Control"])
        if "private" in got:
            assert "public" not in got, name
        for cookie in response.cookies.values():  # the CSRF cookie of a page with a form
            assert cookie["secure"], (name, cookie.key)


def test_only_the_admin_may_use_inline_style_attributes_and_nothing_else_inline(
    client, in_production, pages
):
    for name, (path, _) in pages.items():
        policy = csp(client.get(path, secure=True))
        inline = {d for d, sources in policy.items() if "'unsafe-inline'" in sources}
        assert inline == ({"style-src-attr"} if name == "admin login" else set()), name
        assert not any("'unsafe-eval'" in sources for sources in policy.values()), name


def test_plain_http_is_sent_to_https_but_the_health_probe_is_not(client, in_production, clinic):
    response = client.get("/articles/?page=2")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/articles/?page=2"
    assert client.get("/healthz").status_code in (200, 503)  # answered, not redirected


def test_behind_a_proxy_its_https_header_counts_as_https(client, in_production, clinic):
    response = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200


def test_anything_sent_with_a_form_post_is_never_cached(client, clinic):
    data = {"email": "not an address", "page": "/", "website": ""}
    response = client.post("/newsletter/subscribe/", data)
    assert response.status_code == 400
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_signed_in_staff_get_personal_pages_even_on_public_addresses(client, clinic, staff_user):
    client.force_login(staff_user)
    response = client.get("/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "public" not in response["Cache-Control"]


def test_the_deploy_check_reports_nothing_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout
    assert "security." not in result.stdout + result.stderr


def test_hsts_and_the_proxy_header_follow_their_settings():
    values = production_settings(
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme: https",
    )
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_SCHEME", "https")
    assert production_settings(SECURE_PROXY_SSL_HEADER="")["SECURE_PROXY_SSL_HEADER"] is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SECURE_PROXY_SSL_HEADER", "https"), ("SECURE_HSTS_SECONDS", "-1")],
)
def test_a_malformed_security_setting_stops_start_up_naming_it(variable, value):
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert f"Configuration error: {variable} " in result.stderr
    assert "Traceback" not in result.stderr
