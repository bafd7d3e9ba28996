"""Home page, shared layout, health check, robots.txt and error pages."""

import pytest
from django.urls import reverse

from clinic.models import ClinicProfile, OpeningHours
from tests.html import parse

pytestmark = pytest.mark.django_db


def jsonld_of(response):
    return parse(response).jsonld


def test_home_shows_the_clinic_details_and_a_way_to_book(client, seeded):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Porter Avenue Massage Clinic" in page
    assert 'href="tel:+12099152296"' in page
    assert "702 Porter Ave Ste J" in page and "View on map" in page
    assert f'href="{reverse("booking:start")}">Book now</a>' in page
    assert "Are Tight Calf Muscles the Hidden Cause of Your Low Back Pain?" in page


def test_every_page_has_landmarks_skip_link_and_navigation(client, seeded):
    page = client.get(reverse("articles:list")).content.decode()
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page and "<header" in page and "<footer" in page
    for label in ("Home", "Articles", "Book", "Newsletter"):
        assert f">{label}</a>" in page
    assert 'aria-current="page">Articles</a>' in page


def test_footer_lists_the_weekly_hours_and_closed_days(client, seeded):
    page = client.get("/").content.decode()
    assert "Monday" in page and "9:00 AM – 6:00 PM" in page
    assert "Sunday</th>\n      <td>Closed" in page


def test_footer_announces_upcoming_closures_but_not_past_ones(client, seeded):
    from datetime import timedelta

    from django.utils import timezone

    from clinic.models import Closure

    today = timezone.localdate()
    soon, past = today + timedelta(days=3), today - timedelta(days=9)
    Closure.objects.create(clinic=seeded, starts_on=soon, ends_on=soon, reason="Staff training")
    Closure.objects.create(clinic=seeded, starts_on=past, ends_on=past, reason="Old holiday")
    page = client.get("/").content.decode()
    assert "Staff training" in page and "Old holiday" not in page


def test_home_describes_the_clinic_as_a_local_business(client, seeded):
    (data,) = jsonld_of(client.get("/"))
    assert data["@type"] == "HealthAndBeautyBusiness"
    assert data["telephone"] == "1-209-915-2296"
    assert data["address"]["streetAddress"] == "702 Porter Ave Ste J"
    assert data["address"]["addressLocality"] == "Stockton"
    days = [spec["dayOfWeek"].rsplit("/", 1)[1] for spec in data["openingHoursSpecification"]]
    assert days == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def test_staff_edits_to_the_profile_show_at_once_despite_the_cache(client, seeded):
    assert "Porter Avenue Massage Clinic" in client.get("/").content.decode()
    profile = ClinicProfile.objects.get()
    profile.name = "Porter Ave Soft Tissue"
    profile.save()
    OpeningHours.objects.filter(weekday=OpeningHours.Weekday.SATURDAY).delete()
    page = client.get("/").content.decode()
    assert "Porter Ave Soft Tissue" in page
    assert "Saturday</th>\n      <td>Closed" in page


def test_profile_is_read_from_the_cache_after_the_first_page(
    client, seeded, django_assert_num_queries, settings
):
    settings.PAGE_CACHE_SECONDS = 0  # the view's own queries, not a page cache hit
    client.get("/")
    # The latest articles and their topics, the treatments and the therapists, nothing else.
    with django_assert_num_queries(4):
        client.get("/")


def test_unknown_address_gets_the_styled_404(client, seeded):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "We could not find that page" in page
    assert "Porter Avenue Massage Clinic" in page  # the site's own chrome, not Django's


def test_health_reports_database_ok(client, settings):
    settings.REDIS_URL = ""  # the embedded default: no Redis, no broker
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_health_checks_the_caches_redis_and_the_brokers_apart(client, settings):
    from clinic.celery import app

    saved = app.conf.broker_url  # read before settings change: Celery reads them lazily, once
    settings.CACHE_URL = "redis://127.0.0.1:1/0"  # the cache's Redis is down...
    broker = "redis://127.0.0.1:9/0"  # ...and so is the broker's, another server
    settings.REDIS_URL = settings.CELERY_BROKER_URL = broker
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.broker_url, app._pool, app.amqp._producer_pool = broker, None, None
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved, None, None
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "down", "broker": "down"}


def test_health_is_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "down"}


def test_health_is_503_when_the_database_is_down(client, monkeypatch):
    from clinic import views

    def broken():
        raise ConnectionError("database gone")

    monkeypatch.setattr(views, "_check_database", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down"


def test_favicon_is_served_by_the_site(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/img/favicon.svg"
    assert finders.find("img/favicon.svg")


def test_robots_txt_names_the_sitemap(client, settings):
    settings.SITE_URL = "https://clinic.example"
    body = client.get("/robots.txt").content.decode()
    assert "Sitemap: https://clinic.example/sitemap.xml" in body
    assert "admin" not in body  # a secret ADMIN_URL must not be published


def test_pages_forbid_inline_scripts_and_other_hosts(client, seeded):
    policy = client.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_admin_is_titled_with_the_clinics_name(client, seeded, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Porter Avenue Massage Clinic — staff" in page


def test_pages_refuse_post_with_405(client, seeded):
    assert client.post("/").status_code == 405


def test_a_crash_shows_the_styled_500_page_with_the_phone(rf, seeded):
    from clinic import views

    response = views.server_error(rf.get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page and "tel:+12099152296" in page


def test_the_500_page_renders_even_when_the_database_is_gone(rf, monkeypatch):
    from clinic import views

    def gone(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(views, "render", gone)
    response = views.server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
