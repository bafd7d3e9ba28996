"""Whole public pages from the cache: who gets them, what is never stored, what retires them."""

import gzip
import html
import re
from datetime import datetime, timedelta

import pytest
from django.http import HttpResponse
from django.template import engines
from django.test import RequestFactory
from django.urls import resolve
from django.utils import timezone

from articles.models import Article, Topic
from articles.services import save_article, unpublish_articles
from clinic import pagecache
from clinic.models import ClinicProfile
from tests.conftest import wsgi_get

pytestmark = pytest.mark.django_db

CALF = "/articles/tight-calf-muscles-low-back-pain/"
PUBLIC_PAGES = [
    "/",
    "/articles/",
    "/articles/?topic=low-back-pain",
    "/es/articles/",
    "/articles/topics/low-back-pain/",
    CALF,
    "/articles/feed/rss/",
    "/articles/feed/atom/",
    "/sitemap.xml",
    "/robots.txt",
    "/newsletter/",
]


@pytest.fixture(autouse=True)
def _seeded(seeded):
    return seeded


def calf():
    return Article.objects.get(slug="tight-calf-muscles-low-back-pain")


@pytest.mark.parametrize("path", PUBLIC_PAGES)
@pytest.mark.parametrize("encoding", ["", "gzip, deflate, br"])
def test_a_second_visit_is_served_from_the_cache_byte_for_byte(
    client, path, encoding, django_assert_num_queries
):
    first = client.get(path, HTTP_ACCEPT_ENCODING=encoding)
    assert first.status_code == 200
    assert first["X-Page-Cache"] == "miss"
    with django_assert_num_queries(0):
        second = client.get(path, HTTP_ACCEPT_ENCODING=encoding)
    assert second["X-Page-Cache"] == "hit"
    assert second.content == first.content
    for header in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "Vary"):
        assert second.get(header) == first.get(header), header
    assert second.get("Content-Encoding") == first.get("Content-Encoding")


def test_compressed_and_plain_visitors_each_get_their_own_copy(client):
    plain = client.get("/")
    client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    zipped = client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    again_plain = client.get("/")
    assert zipped["X-Page-Cache"] == again_plain["X-Page-Cache"] == "hit"
    assert zipped["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in again_plain
    assert gzip.decompress(zipped.content) == plain.content == again_plain.content


def test_staff_never_get_a_cached_page_and_see_their_save_at_once(client, staff_user):
    client.get(CALF)
    assert client.get(CALF)["X-Page-Cache"] == "hit"  # the public copy is warm

    staff = type(client)()
    staff.force_login(staff_user)
    article = calf()
    article.title = "Calves, posture and your low back"
    save_article(article=article)

    seen_by_staff = staff.get(CALF)
    assert "X-Page-Cache" not in seen_by_staff
    assert "Calves, posture and your low back" in seen_by_staff.content.decode()
    public = client.get(CALF)
    assert public["X-Page-Cache"] == "miss"
    assert "Calves, posture and your low back" in public.content.decode()
    assert "Calves, posture and your low back" in client.get("/").content.decode()


def test_unpublishing_takes_the_article_off_every_cached_page_at_once(client):
    for path in ("/", "/articles/", CALF):
        client.get(path)
    unpublish_articles(articles=Article.objects.filter(pk=calf().pk))
    assert client.get(CALF).status_code == 404
    assert "tight-calf-muscles-low-back-pain" not in client.get("/articles/").content.decode()
    assert "tight-calf-muscles-low-back-pain" not in client.get("/").content.decode()


def test_clinic_profile_topic_and_hours_changes_show_at_once(client):
    client.get("/")
    client.get("/articles/")
    profile = ClinicProfile.objects.get()
    profile.phone = "+12095550199"
    profile.save()
    assert "0199" in client.get("/").content.decode()
    topic = Topic.objects.get(slug="low-back-pain")
    topic.name = "Sore low backs"
    topic.save()
    assert "Sore low backs" in client.get("/articles/").content.decode()
    profile.hours.all().delete()
    assert client.get("/")["X-Page-Cache"] == "miss"


def test_a_scheduled_article_ends_the_life_of_cached_pages_when_it_goes_live(make_article):
    now = timezone.now()
    make_article(slug="soon", published_at=now + timedelta(seconds=90))
    assert 0 < pagecache._seconds_to_live(now) <= 90


def test_cached_pages_end_at_the_clinics_midnight():
    tz = timezone.get_current_timezone()
    late = timezone.make_aware(datetime(2026, 3, 10, 23, 59, 0), tz)
    assert pagecache._seconds_to_live(late) == 60


@pytest.mark.parametrize("path", ["/book/", "/book/massage-60/", "/es/book/"])
def test_the_treatment_and_therapist_steps_are_the_same_for_everybody_and_cached(
    client, path, django_assert_num_queries
):
    first = client.get(path)
    assert first["X-Page-Cache"] == "miss"
    with django_assert_num_queries(0):
        second = client.get(path)
    assert second["X-Page-Cache"] == "hit"
    assert second.content == first.content


@pytest.mark.parametrize(
    "query", ["?from=tight-calf-muscles-low-back-pain", "?therapist=maria-lopez", "?q=x"]
)
def test_a_booking_step_reached_from_an_article_or_a_therapist_is_never_cached(client, query):
    # The visitor's text: one entry per value would let anyone fill the cache.
    for _ in range(2):
        assert "X-Page-Cache" not in client.get(f"/book/{query}")
        assert "X-Page-Cache" not in client.get(f"/book/massage-60/any/{query}")


def test_a_manage_link_and_a_waitlist_offer_are_never_looked_up_or_stored(client):
    month = client.get("/book/massage-60/any/").content.decode()
    day = re.search(r'href="(/book/massage-60/any/\d{4}-\d{2}-\d{2}/)"', month).group(1)
    details = re.search(rf'href="({day}\d{{4}}/)"', client.get(day).content.decode()).group(1)
    for _ in range(2):
        assert "X-Page-Cache" not in client.get(f"{details}?offer=somebody-elses")
        assert "X-Page-Cache" not in client.get("/book/manage/some-token/")


def test_inside_a_transaction_the_month_and_times_are_rendered_fresh(client):
    # A test's transaction never commits, so the schedule's version cannot vouch for a copy
    # (tests/booking/test_cached_availability.py shows them cached after real commits).
    for _ in range(2):
        assert client.get("/book/massage-60/any/")["X-Page-Cache"] == "miss"


def test_the_time_step_shows_a_time_taken_a_moment_ago_as_gone(client, patient, still_clock):
    from booking.models import Service, Therapist
    from booking.services import book_appointment

    day_page = client.get("/book/massage-60/any/").content.decode()
    day_path = re.search(r'href="(/book/massage-60/any/\d{4}-\d{2}-\d{2}/)"', day_page).group(1)
    times = client.get(day_path).content.decode()
    first = re.search(rf'href="{day_path}(\d{{4}})/"', times).group(1)
    day = datetime.fromisoformat(day_path.split("/")[-2]).date()
    start = timezone.make_aware(
        datetime.combine(day, datetime.strptime(first, "%H%M").time()),
        timezone.get_default_timezone(),
    )
    service = Service.objects.get(slug="massage-60")
    for therapist in Therapist.objects.offering(service):
        try:
            book_appointment(service=service, therapist=therapist, start=start, patient=patient)
        except Exception:  # noqa: BLE001, S112  # that therapist is not free then: the next
            continue
    again = client.get(day_path)
    assert again["X-Page-Cache"] == "miss"
    assert f'href="{day_path}{first}/"' not in again.content.decode()


def test_visitors_with_a_session_or_a_flash_message_get_a_fresh_page(client, settings):
    client.get("/")
    client.cookies[settings.SESSION_COOKIE_NAME] = "anything"
    assert "X-Page-Cache" not in client.get("/")
    del client.cookies[settings.SESSION_COOKIE_NAME]
    client.cookies["messages"] = "anything"
    assert "X-Page-Cache" not in client.get("/")


def _middleware_around(view_response):
    calls = []

    def get_response(request):
        calls.append(request)
        request.resolver_match = resolve("/")  # a view whose pages may be cached
        return view_response(request)

    return pagecache.PageCacheMiddleware(get_response), calls


def test_a_response_that_sets_a_cookie_is_never_stored():
    def view(request):
        response = HttpResponse("<p>hello</p>")
        response.set_cookie("visitor", "42")
        return response

    middleware, calls = _middleware_around(view)
    for _ in range(2):
        middleware(RequestFactory().get("/"))
    assert len(calls) == 2


def test_a_page_with_a_csrf_token_is_never_stored():
    template = engines["django"].from_string("<form>{% csrf_token %}</form>")

    def view(request):
        return HttpResponse(template.render({}, request))

    middleware, calls = _middleware_around(view)
    responses = [middleware(RequestFactory().get("/")) for _ in range(2)]
    assert len(calls) == 2
    assert b"csrfmiddlewaretoken" in responses[1].content


def test_a_private_page_is_never_stored():
    def view(request):
        response = HttpResponse("<p>yours only</p>")
        response["Cache-Control"] = "private, no-store"
        return response

    middleware, calls = _middleware_around(view)
    for _ in range(2):
        middleware(RequestFactory().get("/"))
    assert len(calls) == 2


def test_a_page_rendered_for_signed_in_staff_is_never_stored_or_served_to_anyone(staff_user):
    # However staff came to be signed in (the session cookie is the usual way, but an
    # authentication backend need not use it), their page names them and is theirs alone.
    from django.contrib.auth.models import AnonymousUser

    signed_in = iter([staff_user, staff_user, AnonymousUser()])

    def view(request):
        request.user = next(signed_in)
        who = request.user.get_username() or "a visitor"
        return HttpResponse(f"<p>Signed in as {who}</p>")

    middleware, calls = _middleware_around(view)
    staff_pages = [middleware(RequestFactory().get("/")) for _ in range(2)]
    assert len(calls) == 2, "a staff member's page was served from the cache"
    assert all(page["X-Page-Cache"] == "miss" for page in staff_pages)
    visitor = middleware(RequestFactory().get("/"))
    assert len(calls) == 3 and b"staffer" not in visitor.content
    assert visitor.content == b"<p>Signed in as a visitor</p>"


def test_a_staff_preview_of_a_draft_is_never_stored(client, staff_user, make_article):
    draft = make_article(slug="draft-one", status=Article.Status.DRAFT, published_at=None)
    staff = type(client)()
    staff.force_login(staff_user)
    assert staff.get(draft.get_absolute_url()).status_code == 200
    assert client.get(draft.get_absolute_url()).status_code == 404


def test_with_the_cache_unreachable_pages_still_render(client, monkeypatch):
    class Unreachable:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache is down")

            return fail

    monkeypatch.setattr(pagecache, "cache", Unreachable())
    for _ in range(2):
        response = client.get("/")
        assert response.status_code == 200
        assert "Porter Avenue" in response.content.decode()
    pagecache.bump_version()  # a save while the cache is down does not fail either


def page_cache_keys(*, delete=False):
    """The page-cache entries stored now, whichever cache this pass uses (or delete them)."""
    from django.core.cache import cache

    if isinstance(getattr(cache, "_cache", None), dict):  # LocMemCache (pass (a))
        keys = {key for key in cache._cache if ":pagecache:" in key and "version" not in key}
        if delete:
            for key in keys:
                cache._delete(key)
        return keys
    client = cache._cache.get_client(write=True)  # Redis (pass (b))
    patterns = [f"{cache.make_key(f'pagecache:{encoding}:')}*" for encoding in ("-", "gzip")]
    keys = {key for pattern in patterns for key in client.scan_iter(match=pattern, count=1000)}
    if delete and keys:
        client.delete(*keys)
    return keys


def test_junk_query_strings_add_at_most_a_handful_of_cache_entries(client):
    pages = ["/", CALF, "/articles/", "/articles/topics/low-back-pain/", "/newsletter/"]
    page_cache_keys(delete=True)  # entries of earlier tests (retired, but not yet expired)
    for n in range(1000):
        junk = [f"zz={n}", f"utm_source=x{n}&fbclid={n}", f"page={n % 1}{'0' * (n % 3)}1"]
        path = pages[n % len(pages)]
        response = client.get(f"{path}?{junk[n % len(junk)]}")
        assert response.status_code == 200, (path, junk[n % len(junk)])
    added = page_cache_keys()
    # One entry per page (and `?page=001` is page 1), however many junk strings came.
    assert 1 <= len(added) <= len(pages)


def test_a_parameter_the_view_ignores_is_served_the_pages_one_entry(client):
    assert client.get("/articles/")["X-Page-Cache"] == "miss"
    for query in ("?zz=1", "?utm_campaign=spring", "?page=1", "?page=01&zz=2", "?page=0001"):
        response = client.get(f"/articles/{query}")
        assert response["X-Page-Cache"] == "hit", query
    assert client.get("/articles/?page=" + "9" * 5000).status_code == 404  # no such page
    # A parameter the view reads still gets a page of its own.
    topic = client.get("/articles/?topic=low-back-pain")
    assert topic["X-Page-Cache"] == "miss" and topic.status_code == 200


def language_switch(response):
    found = re.search(r'<a [^>]*language-switch[^>]*href="([^"]*)"', response.content.decode())
    return html.unescape(found[1])


def test_a_stored_page_never_shows_the_next_visitors_the_query_string_it_was_rendered_for(client):
    # An ad's click id, a campaign's words: one visitor's, and left out of the key, so the
    # page stored for them is everybody's. Its link to the other language used to keep them.
    first = client.get("/?fbclid=one-visitors-click-id")
    assert first["X-Page-Cache"] == "miss"
    second = client.get("/")
    assert second["X-Page-Cache"] == "hit"
    for page in (first, second):
        assert "one-visitors-click-id" not in page.content.decode()
        assert language_switch(page) == "/es/"
    # What the key holds is the same for everybody who gets that entry: the link keeps it.
    topic = client.get("/articles/?utm_source=someones-mail&topic=low-back-pain")
    assert language_switch(topic) == "/es/articles/?topic=low-back-pain"
    # A page never stored is the visitor's own: their query string stays as they typed it.
    assert language_switch(client.get("/articles/?q=calf&zz=1")) == "/es/articles/?q=calf&zz=1"


def test_a_search_is_answered_but_never_stored(client):
    before = page_cache_keys()
    for n in range(20):
        response = client.get(f"/articles/?q=calf{n}")
        assert response.status_code == 200 and "X-Page-Cache" not in response
    assert page_cache_keys() - before == set()


# --- the WSGI handler: hits answered before Django's request handling ------------------------
@pytest.mark.parametrize("path", ["/", "/es/", CALF, "/book/", "/es/book/massage-60/"])
@pytest.mark.parametrize("encoding", ["", "gzip, deflate, br"])
def test_a_hit_answered_early_carries_every_header_of_a_fresh_render(path, encoding, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    headers = {"HTTP_ACCEPT_ENCODING": encoding, "HTTP_X_FORWARDED_PROTO": "https"}
    status, fresh, body, handled = wsgi_get(path, **headers)
    assert (status, fresh["X-Page-Cache"], handled) == ("200 OK", "miss", True)
    status, hit, hit_body, handled = wsgi_get(path, **headers)
    assert (status, hit["X-Page-Cache"], handled) == ("200 OK", "hit", False)
    assert hit_body == body
    assert {**hit, "X-Page-Cache": "miss"} == fresh
    for header in (
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Permissions-Policy",
        "Cache-Control",
        "Vary",
    ):
        assert header in hit, header
    assert hit["Content-Language"] == ("es" if path.startswith("/es/") else "en")
    assert ("Content-Encoding" in hit) == bool(encoding)


def test_a_hit_answered_early_still_gets_its_line_in_the_request_log(caplog):
    wsgi_get(CALF)
    caplog.clear()
    with caplog.at_level("INFO", logger="clinic.request"):
        assert wsgi_get(CALF)[1]["X-Page-Cache"] == "hit"
    (line,) = [r for r in caplog.records if r.name == "clinic.request"]
    assert (line.method, line.path, line.status) == ("GET", CALF, 200)


def test_signed_in_visitors_and_forms_are_never_answered_early(settings):
    wsgi_get("/")
    assert wsgi_get("/")[3] is False  # warm: anonymous visitors get the copy
    cookie = {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=anything"}
    status, headers, _body, handled = wsgi_get("/", **cookie)
    assert handled and "X-Page-Cache" not in headers
    assert wsgi_get("/?q=calf")[3] is True


def test_a_page_changed_by_staff_is_not_answered_early_from_the_old_copy():
    wsgi_get(CALF)
    article = calf()
    article.title = "Calves, and your back"
    save_article(article=article)
    status, headers, body, handled = wsgi_get(CALF)
    assert handled and headers["X-Page-Cache"] == "miss"
    assert b"Calves, and your back" in body


def test_a_copy_kept_in_memory_is_dropped_when_another_process_retires_the_pages(client, settings):
    # Pass (b): each process keeps recent pages in memory, trusted only while Redis's
    # announcements say nothing changed. Another process's bump is played here by hand.
    if not settings.REDIS_URL:
        pytest.skip("Redis is not configured in this pass (pass (a): the embedded default)")
    from django.core.cache import caches

    from clinic import pagecopies
    from tests.conftest import wait_for

    client.get(CALF)
    wait_for(lambda: pagecopies.copies.version() is not None)
    assert client.get(CALF)["X-Page-Cache"] == "hit"
    redis = caches["default"]._cache.get_client(write=True)
    redis.set(caches["default"].make_key(pagecache.VERSION_KEY), b"another process's")
    redis.publish(caches["default"].make_key(pagecopies.CHANNEL), "bumped")
    wait_for(lambda: client.get(CALF)["X-Page-Cache"] == "miss")


def test_a_copy_kept_in_memory_is_served_without_asking_redis(client, settings, monkeypatch):
    if not settings.REDIS_URL:
        pytest.skip("Redis is not configured in this pass (pass (a): the embedded default)")
    from django.core.cache import cache

    from clinic import pagecopies
    from tests.conftest import wait_for

    client.get(CALF)
    wait_for(lambda: pagecopies.copies.version() is not None)
    client.get(CALF)

    def no_redis(*args, **kwargs):
        raise AssertionError("asked Redis")

    monkeypatch.setattr(cache, "get_many", no_redis)
    assert client.get(CALF)["X-Page-Cache"] == "hit"


def test_a_worker_whose_redis_stops_no_longer_trusts_its_copies_and_trusts_them_again_after(
    settings,
):
    # Pass (b) and production: copies in memory are served only while this process hears
    # Redis's announcements. With Redis gone it cannot hear of another process's change, so
    # it must stop serving them (and render) until Redis is back. A Redis of its own, to stop.
    if not settings.REDIS_URL:
        pytest.skip("Redis is not configured in this pass (pass (a): the embedded default)")
    import os
    import shutil
    import subprocess

    import redis
    from django.test import Client

    from clinic import cache as resilient
    from clinic import pagecopies
    from tests.clinic.test_serve import free_port
    from tests.conftest import wait_for

    assert shutil.which("redis-server"), "pass (b) needs redis-server (apt-get install redis)"
    port = free_port()
    # On the real clock: under `make test-dates` libfaketime would stall Redis's timers.
    real_clock = {k: v for k, v in os.environ.items() if not k.startswith(("FAKETIME", "LD_PRE"))}

    def start():
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            env=real_clock,
        )
        probe = redis.Redis(port=port)
        assert wait_for(lambda: _answers(probe)), "redis-server did not start"
        resilient._down_until.clear()  # as RETRY_AFTER_SECONDS later
        return server

    server = start()
    try:
        location = f"redis://127.0.0.1:{port}/0"
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": location}}
        visitor = Client()
        visitor.get(CALF)
        assert wait_for(lambda: pagecopies.copies.version() is not None)
        assert visitor.get(CALF)["X-Page-Cache"] == "hit"
        server.terminate()
        server.wait()
        assert wait_for(lambda: pagecopies.copies.version() is None, timeout=10)
        page = visitor.get(CALF)
        assert (page.status_code, page["X-Page-Cache"]) == (200, "miss")
        assert b"calf" in page.content.lower()
        server = start()
        assert wait_for(lambda: visitor.get(CALF)["X-Page-Cache"] == "hit", timeout=15)
    finally:
        server.terminate()
        server.wait()


def _answers(client):
    import redis

    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False
