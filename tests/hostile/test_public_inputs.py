"""Hostile input at every public form and URL parameter: never a 500, nothing written unless
the input was valid.

Arbitrary text, Unicode, very long values, control characters, newlines and NUL bytes go
into query strings, POST fields and path segments (percent-encoded, and raw as a careless
client would send them). Known troublemakers are pinned as explicit examples, so both
passes (SQLite and PostgreSQL, which refuses NUL in a string) always try them.
"""

import uuid
from datetime import UTC, timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from booking.models import Appointment
from clinic.models import OutgoingEmail
from newsletter.forms import SignupForm
from newsletter.models import Subscriber

pytestmark = pytest.mark.django_db

HOSTILE = settings.get_profile("hostile")

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "x\r\nSet-Cookie: evil=1",
    "../" * 20 + "etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%00",
    "%ff%fe",
    "'\"; DROP TABLE booking_appointment; --",
    "<script>alert(1)</script>",
    "{{ 7|add:7 }}{% debug %}",
    "\u202egnp.exe",
    "\ufeff\u200b",
    "𝕏" * 300,
    "é" * 2000,
    "a" * 10_000,
    "9" * 5000,
    "-1",
    "0",
    "1e309",
    "NaN",
    "2026-02-30",
    "9999-12",
    "0000-00",
    "//evil.example/",
    "javascript:alert(1)",
    "\\\\server\\share",
]


def _repeated(unit, times):
    return (unit or "x") * times


hostile = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=200),
    st.text(alphabet=st.characters(max_codepoint=0x20), max_size=40),  # control characters
    st.builds(_repeated, st.text(max_size=4), st.integers(min_value=100, max_value=3000)),
)
# Shaped like what the URL converters accept, so the view itself gets the odd value.
iso_day = st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z")
hhmm = st.from_regex(r"\A\d{4}\Z")
EXTREME_DAYS = ["0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "2026-13-01"]


@pytest.fixture
def web():
    """A browser that gets the 500 page instead of the exception, as a patient would."""
    return Client(raise_request_exception=False)


def rows():
    return (Appointment.objects.count(), Subscriber.objects.count(), OutgoingEmail.objects.count())


def state():
    """Everything a public request could change: rows, and each appointment and subscriber."""
    return (
        rows(),
        list(Appointment.objects.order_by("pk").values_list("status", "starts_at", "notes")),
        list(Subscriber.objects.order_by("pk").values_list("status", "email")),
    )


def check(response, what):
    assert response.status_code < 500, f"{what} answered {response.status_code}"
    return response


def segments(value):
    """A value as a path segment: percent-encoded, and raw (slashes and all)."""
    return [quote(value, safe=""), value]


# --- the booking steps --------------------------------------------------------------------
@HOSTILE
@given(value=hostile)
@example(value="\x00")
@example(value="a" * 300)
def test_choosing_a_treatment_and_therapist_survives_anything(web, world, value):
    before = state()
    check(web.get("/book/", {"from": value}), "?from= on the first step")
    check(web.get("/book/", {"therapist": value}), "?therapist= on the first step")
    for segment in segments(value):
        check(web.get(f"/book/{segment}/", {"from": value}), "the treatment step")
        check(web.get(f"/book/massage-60/{segment}/"), "the therapist step")
    assert state() == before


@HOSTILE
@given(month=hostile, source=hostile)
@example(month="2026-13", source="\x00")
@example(month="9999-12", source="")
@example(month="0001-01", source="calf-pain")
def test_the_month_view_survives_any_month_and_source(web, world, month, source):
    before = state()
    for therapist in ("any", world.therapist.slug):
        check(
            web.get(f"/book/massage-60/{therapist}/", {"month": month, "from": source}),
            "the month view",
        )
    assert state() == before


@HOSTILE
@given(day=st.one_of(iso_day, st.sampled_from(EXTREME_DAYS), hostile), at=st.one_of(hhmm, hostile))
@example(day="9999-12-31", at="2330")
@example(day="0001-01-01", at="0000")
@example(day="2026-02-30", at="2460")
def test_the_day_and_time_steps_survive_any_day_and_time(web, world, day, at):
    before = state()
    for day_segment in segments(day):
        check(web.get(f"/book/massage-60/any/{day_segment}/"), "the times of a day")
        for at_segment in segments(at):
            url = f"/book/massage-60/any/{day_segment}/{at_segment}/"
            check(web.get(url), "the details step")
            check(web.post(url, {"name": "Pat"}), "a details POST to an odd time")
    assert state() == before


DETAILS_FIELDS = [
    "slot",
    "name",
    "email",
    "phone",
    "notes",
    "consent",
    "source",
    "submission_key",
    *Appointment.INTAKE_FIELDS,
]


@pytest.fixture
def free_time(world, service, therapist, next_monday):
    """A free start next Monday afternoon and its details page."""
    local = timezone.localtime(world.starts_at).replace(hour=15, minute=0)
    url = f"/book/{service.slug}/{therapist.slug}/{local:%Y-%m-%d}/{local:%H%M}/"
    return local, url


def valid_details(start):
    return {
        "slot": start.astimezone(UTC).isoformat(),
        "name": "Sam Patient",
        "email": "sam@example.com",
        "phone": "+12095550143",
        "notes": "",
        "consent": "on",
        "source": "",
        "submission_key": uuid.uuid4().hex,
        **dict.fromkeys(Appointment.INTAKE_FIELDS, "no"),
    }


def forget_booking(before_ids):
    """Undo a booking an acceptable value made, so the next example finds the time free."""
    OutgoingEmail.objects.exclude(pk__in=before_ids["emails"]).delete()
    Appointment.objects.exclude(pk__in=before_ids["appointments"]).delete()


@HOSTILE
@given(field=st.sampled_from(DETAILS_FIELDS), value=hostile)
@example(field="name", value="\x00")
@example(field="notes", value="a\x00b")
@example(field="email", value="pat@exam\x00ple.com")
@example(field="phone", value="\x00")
@example(field="slot", value="9999-12-31T23:59:59+99:00")
@example(field="source", value="\x00")
@example(field="submission_key", value="\x00" * 32)
def test_the_details_form_refuses_any_bad_field_and_books_nothing(
    web, world, free_time, field, value
):
    start, url = free_time
    ids = {
        "appointments": list(Appointment.objects.values_list("pk", flat=True)),
        "emails": list(OutgoingEmail.objects.values_list("pk", flat=True)),
    }
    before = state()
    data = {**valid_details(start), field: value}

    response = check(web.post(url, data), f"the details form with a hostile {field}")

    if response.status_code == 303:  # the value was acceptable: one booking, two emails
        assert rows() == (before[0][0] + 1, before[0][1], before[0][2] + 2)
        forget_booking(ids)
    else:
        assert response.status_code in (400, 409)
        assert state() == before


@HOSTILE
@given(data=st.fixed_dictionaries({name: hostile for name in DETAILS_FIELDS}))
def test_the_details_form_filled_with_garbage_books_nothing(web, world, free_time, data):
    _start, url = free_time
    before = state()
    response = check(web.post(url, data), "the details form full of garbage")
    assert response.status_code in (400, 409)
    assert state() == before


# --- the manage link ----------------------------------------------------------------------
@HOSTILE
@given(token=hostile)
@example(token="\x00")
@example(token="a" * 300)
@example(token="eyJ0b2tlbiI6MX0:1abc:xyz")
def test_a_hostile_manage_token_is_a_plain_not_found(web, world, token):
    before = state()
    for segment in segments(token):
        base = f"/book/manage/{segment}"
        check(web.get(f"{base}/"), "the manage page")
        check(web.post(f"{base}/cancel/", {"reason": "x"}), "cancel")
        check(web.get(f"{base}/move/", {"month": "2026-01"}), "move: the month")
        check(web.get(f"{base}/move/2030-01-07/"), "move: a day")
        check(web.get(f"{base}/move/2030-01-07/1000/"), "move: a time")
        check(web.post(f"{base}/move/2030-01-07/1000/"), "move: confirm")
        check(web.get(f"/book/appointment/{segment}/"), "the confirmation page")
        check(web.get(f"/book/appointment/{segment}/appointment.ics"), "the .ics")
    assert state() == before


@pytest.fixture
def manage_url(world):
    from booking.links import manage_token

    return f"/book/manage/{manage_token(world)}"


@HOSTILE
@given(reason=hostile)
@example(reason="\x00")
@example(reason="a" * 301)
def test_cancelling_with_a_hostile_reason_cancels_only_when_the_reason_is_acceptable(
    web, world, manage_url, reason
):
    emails = list(OutgoingEmail.objects.values_list("pk", flat=True))
    before = state()
    response = check(web.post(f"{manage_url}/cancel/", {"reason": reason}), "cancel")
    world.refresh_from_db()
    if response.status_code == 302:
        assert world.status == Appointment.Status.CANCELLED
        # Put it back for the next example: confirmed again, the notices forgotten.
        Appointment.objects.filter(pk=world.pk).update(
            status=Appointment.Status.CONFIRMED, cancelled_at=None, cancellation_reason=""
        )
        OutgoingEmail.objects.exclude(pk__in=emails).delete()
    else:
        assert response.status_code == 400
        assert state() == before


@HOSTILE
@given(
    month=hostile,
    day=st.one_of(iso_day, st.sampled_from(EXTREME_DAYS)),
    at=st.one_of(hhmm, st.sampled_from(["2330", "0000", "2400", "9999"])),
)
@example(month="\x00", day="9999-12-31", at="2330")
@example(month="9999-12", day="0001-01-01", at="0000")
def test_moving_a_visit_survives_any_month_day_and_time(web, world, manage_url, month, day, at):
    before = state()
    check(web.get(f"{manage_url}/move/", {"month": month}), "move: the month")
    check(web.get(f"{manage_url}/move/{day}/"), "move: a day")
    check(web.get(f"{manage_url}/move/{day}/{at}/"), "move: a time")
    response = check(web.post(f"{manage_url}/move/{day}/{at}/"), "move: confirm")
    assert response.status_code != 302, "moved to a time no one offered"
    assert state() == before


# --- the newsletter -----------------------------------------------------------------------
@HOSTILE
@given(
    email=st.one_of(hostile, st.emails(), st.just("pat@example.com")),
    page=hostile,
    website=st.one_of(st.just(""), hostile),
)
@example(email="pat@example.com\x00", page="/", website="")
@example(email="pat@example.com", page="/\x00", website="")
@example(email="pat@example.com", page="", website="\x00")
@example(email="a" * 250 + "@example.com", page="//evil.example", website="")
def test_newsletter_sign_up_writes_only_for_a_valid_address(web, world, email, page, website):
    data = {"email": email, "page": page, "website": website}
    form = SignupForm(data)
    acceptable = form.is_valid() and not form.is_bot
    before = state()

    response = check(web.post("/newsletter/subscribe/", data), "the sign-up")

    if not acceptable:
        assert response.status_code in (302, 400)  # a bot gets the same answer as anyone
        assert state() == before
    else:
        assert response.status_code == 302
        assert Subscriber.objects.filter(email__iexact=email.strip()).exists()


@pytest.fixture
def subscriber(world):
    return Subscriber.objects.create(email="sub@example.com")


@HOSTILE
@given(token=hostile)
@example(token="\x00")
@example(token="a" * 301)
@example(token="eyJzIjoxfQ:1abc:xyz")
def test_hostile_confirm_and_unsubscribe_links_change_nothing(web, subscriber, token):
    before = state()
    for segment in segments(token):
        for method in (web.get, web.post):
            check(method(f"/newsletter/confirm/{segment}/"), "confirm")
            check(method(f"/newsletter/unsubscribe/{segment}/"), "unsubscribe")
        check(web.post(f"/newsletter/confirm/{segment}/resend/"), "resend")
    assert state() == before


# --- articles and media -------------------------------------------------------------------
@HOSTILE
@given(q=hostile, topic=hostile, page=hostile)
@example(q="\x00", topic="\x00", page="\x00")
@example(q="a" * 201, topic="a" * 300, page="9" * 5000)
@example(q="!!! & | <-> :*", topic="", page="-1")
def test_article_search_and_paging_survive_anything(web, world, q, topic, page):
    before = state()
    check(web.get("/articles/", {"q": q, "topic": topic, "page": page}), "search")
    check(web.get("/articles/", {"page": page}), "paging")
    for segment in segments(topic):
        check(web.get(f"/articles/topics/{segment}/", {"page": page}), "a topic page")
        check(web.get(f"/articles/{segment}/"), "an article")
    assert state() == before


@HOSTILE
@given(path=hostile)
@example(path="a" * 256)
@example(path="\x00")
@example(path="../settings.py")
def test_media_paths_survive_anything(web, world, path):
    for segment in [*segments(path), quote(path)]:
        check(web.get(f"/media/{segment}"), "a media path")


def test_the_hostile_examples_reach_the_views(web, world, free_time):
    """Guard: the fixtures are live, so the tests above exercise real pages."""
    start, url = free_time
    assert web.post(url, valid_details(start)).status_code == 303
    assert web.get("/book/massage-60/any/").status_code == 200
    assert web.get("/articles/", {"q": "calf"}).status_code == 200
    assert world.starts_at > timezone.now() + timedelta(days=1)


# --- the waitlist ---------------------------------------------------------------------------
WAITLIST_FIELDS = ["when", "first_day", "last_day", "days", "parts", "name", "email", "phone"]


def valid_waitlist(first_day):
    return {
        "when": "range",
        "first_day": first_day.isoformat(),
        "last_day": first_day.isoformat(),
        "parts": ["morning"],
        "name": "Sam Waiting",
        "email": "sam@example.com",
        "phone": "+12095550143",
    }


@HOSTILE
@given(field=st.sampled_from(WAITLIST_FIELDS), value=hostile)
@example(field="name", value="\x00")
@example(field="email", value="sam@exam\x00ple.com")
@example(field="first_day", value="9999-12-31")
@example(field="last_day", value="0001-01-01")
@example(field="parts", value="\x00")
def test_the_waitlist_form_refuses_any_bad_field_and_lists_nobody(web, world, field, value):
    from booking.models import WaitlistEntry

    data = valid_waitlist(timezone.localtime(world.starts_at).date())
    data[field] = value
    for therapist in ("any", world.therapist.slug):
        response = check(web.post(f"/book/massage-60/{therapist}/waitlist/", data), "joining")
        if response.status_code != 302:
            assert response.status_code == 400
    check(web.get("/book/massage-60/any/waitlist/", {"day": value, "month": value}), "the form")
    for entry in WaitlistEntry.objects.all():  # whatever was accepted is what a form allows
        entry.full_clean()
    WaitlistEntry.objects.all().delete()
    OutgoingEmail.objects.exclude(to=["pat@example.com"]).delete()


@HOSTILE
@given(days=st.lists(st.one_of(hostile, iso_day, st.sampled_from(EXTREME_DAYS)), max_size=40))
@example(days=["\x00"])
@example(days=["2000-01-03", "2999-01-04"])
@example(days=[f"2027-01-{n:02}" for n in range(1, 32)] + ["2027-02-01"])
def test_hostile_ticked_days_are_refused_with_a_400_and_list_nobody(web, world, days):
    from booking.models import WaitlistEntry

    data = {**valid_waitlist(timezone.localtime(world.starts_at).date()), "when": "days"}
    data["days"] = days
    response = check(web.post("/book/massage-60/any/waitlist/", data), "joining for days")
    if response.status_code != 302:
        assert response.status_code == 400
    for entry in WaitlistEntry.objects.all():  # whatever was accepted is what a form allows
        entry.full_clean()
        assert 1 <= len(entry.days) <= 31
    WaitlistEntry.objects.all().delete()
    OutgoingEmail.objects.exclude(to=["pat@example.com"]).delete()


@HOSTILE
@given(token=hostile)
@example(token="\x00")
@example(token="a" * 300)
@example(token="MQ:1abc:xyz")
def test_hostile_waitlist_tokens_offer_and_change_nothing(web, world, free_time, token):
    before = state()
    _start, details = free_time
    for segment in segments(token):
        check(web.get(f"/book/waitlist/leave/{segment}/"), "the leave page")
        check(web.post(f"/book/waitlist/leave/{segment}/"), "leaving")
        check(web.get(f"/book/waitlist/offer/{segment}/"), "an offer link")
    check(web.get(details, {"offer": token}), "the details step with an offer")
    check(web.post(details, {"offer": token, "name": "x"}), "booking with an offer")
    assert state() == before


# --- a therapist's calendar feed --------------------------------------------------------------
@HOSTILE
@given(token=st.one_of(hostile, st.from_regex(r"\A[A-Za-z0-9_-]{43}\Z")))
@example(token="\x00" * 43)
@example(token="A" * 43)
@example(token="None")
def test_hostile_calendar_feed_tokens_show_no_calendar(web, world, token):
    from booking.services import reset_calendar_feed

    if not world.therapist.calendar_token:
        reset_calendar_feed(therapist=world.therapist)
    for segment in segments(token):
        response = check(web.get(f"/book/therapist-calendar/{segment}/visits.ics"), "a feed")
        assert b"BEGIN:VCALENDAR" not in response.content


# --- a treatment for two --------------------------------------------------------------------
COUPLES_FIELDS = [
    "companion_name",
    *(f"companion_{name}" for name in Appointment.INTAKE_FIELDS),
]


@pytest.fixture
def couples_time(world, next_monday):
    """A time next Monday afternoon when two demo therapists and the couples room are free."""
    local = timezone.localtime(world.starts_at).replace(hour=15, minute=0)
    return local, f"/book/side-by-side-massage/any/{local:%Y-%m-%d}/{local:%H%M}/"


@HOSTILE
@given(field=st.sampled_from(COUPLES_FIELDS), value=hostile)
@example(field="companion_name", value="\x00")
@example(field="companion_name", value="a" * 300)
@example(field="companion_intake_pregnant", value="maybe")
def test_the_second_persons_fields_refuse_anything_bad_and_book_nothing(
    web, world, couples_time, field, value
):
    start, url = couples_time
    ids = {
        "appointments": list(Appointment.objects.values_list("pk", flat=True)),
        "emails": list(OutgoingEmail.objects.values_list("pk", flat=True)),
    }
    before = state()
    data = {
        **valid_details(start),
        **{f"companion_{name}": "no" for name in Appointment.INTAKE_FIELDS},
        field: value,
    }

    response = check(web.post(url, data), f"the couples form with a hostile {field}")

    if response.status_code == 303:  # acceptable: two visits, one confirmation and one notice
        assert rows() == (before[0][0] + 2, before[0][1], before[0][2] + 2)
        forget_booking(ids)
    else:
        assert response.status_code in (400, 409)
        assert state() == before


@HOSTILE
@given(first=hostile, second=hostile)
@example(first="maria-lopez", second="maria-lopez")
@example(first="maria-lopez", second="\x00")
def test_any_pair_of_therapists_on_the_url_is_a_page_or_a_404(web, world, first, second):
    before = state()
    for segment in segments(f"{first}--{second}"):
        check(web.get(f"/book/side-by-side-massage/{segment}/"), "a pair's month")
    assert state() == before


def test_the_couples_examples_reach_the_views(web, world, couples_time):
    start, url = couples_time
    data = {
        **valid_details(start),
        **{f"companion_{name}": "no" for name in Appointment.INTAKE_FIELDS},
    }
    assert web.post(url, data).status_code == 303
    assert Appointment.objects.filter(pair__isnull=False).count() == 2
