"""Free times from the cache: served again while the schedule is unchanged, never after a write
that changed it, however that write was made.

Transactional (real commits), because a copy is only ever kept outside a transaction and
PostgreSQL replaces the schedule's version at COMMIT. Each test first shows the copy is
served (a hit), so the fresh page after the write is the invalidation's doing.
"""

import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from booking.models import (
    Appointment,
    BookingRules,
    Service,
    Therapist,
    TimeOff,
)
from booking.services import SlotUnavailable, book_appointment
from clinic.models import ClinicProfile, Closure
from tests.conftest import wsgi_get

pytestmark = pytest.mark.django_db(transaction=True)

MONTH = "/book/massage-60/any/"


@pytest.fixture(autouse=True)
def _seeded(seeded, still_clock):
    return seeded


def free_days(page):
    return re.findall(r'href="/book/massage-60/any/(\d{4}-\d{2}-\d{2})/"', page)


def cached_twice(client, path):
    """The page, after checking that its second visit came from the cache."""
    assert client.get(path)["X-Page-Cache"] == "miss"
    second = client.get(path)
    assert second["X-Page-Cache"] == "hit"
    return second.content.decode()


def book_every_therapist(start, patient):
    """Book `start` with every therapist free then, so nobody is."""
    service = Service.objects.get(slug="massage-60")
    for therapist in Therapist.objects.offering(service):
        try:
            book_appointment(service=service, therapist=therapist, start=start, patient=patient)
        except SlotUnavailable:
            continue


def off_all_day(day):
    """Every therapist takes `day` off, by bulk_create: no save(), no signal, so only the
    database's trigger can notice."""
    tz = timezone.get_default_timezone()
    TimeOff.objects.bulk_create(
        TimeOff(
            therapist=therapist,
            starts_at=datetime.combine(day, datetime.min.time(), tzinfo=tz),
            ends_at=datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz),
        )
        for therapist in Therapist.objects.all()
    )


def local_day(iso):
    return datetime.strptime(iso, "%Y-%m-%d").date()


def test_time_off_written_around_every_service_makes_the_next_month_page_fresh(client):
    first = free_days(cached_twice(client, MONTH))[0]
    off_all_day(local_day(first))
    again = client.get(MONTH)
    assert again["X-Page-Cache"] == "miss"
    assert first not in free_days(again.content.decode())


def test_a_closure_changed_by_a_queryset_update_shows_on_the_next_month_page(client):
    first = free_days(cached_twice(client, MONTH))[0]
    closure = Closure.objects.create(
        clinic=ClinicProfile.objects.get(),
        starts_on=local_day("2000-01-01"),
        ends_on=local_day("2000-01-01"),
    )
    assert free_days(cached_twice(client, MONTH))[0] == first
    Closure.objects.filter(pk=closure.pk).update(
        starts_on=local_day(first), ends_on=local_day(first)
    )
    assert first not in free_days(client.get(MONTH).content.decode())


def test_a_time_booked_a_moment_ago_is_gone_from_the_next_time_page(client, patient):
    day = free_days(client.get(MONTH).content.decode())[0]
    path = f"{MONTH}{day}/"
    times = re.findall(rf'href="{path}(\d{{4}})/"', cached_twice(client, path))
    start = timezone.make_aware(
        datetime.combine(local_day(day), datetime.strptime(times[0], "%H%M").time())
    )
    book_every_therapist(start, patient)
    again = client.get(path)
    assert again["X-Page-Cache"] == "miss"
    assert times[0] not in re.findall(rf'href="{path}(\d{{4}})/"', again.content.decode())


def test_a_cancellation_made_by_raw_sql_frees_the_time_on_the_next_time_page(client, patient):
    day = free_days(client.get(MONTH).content.decode())[0]
    path = f"{MONTH}{day}/"
    times = re.findall(rf'href="{path}(\d{{4}})/"', client.get(path).content.decode())
    start = timezone.make_aware(
        datetime.combine(local_day(day), datetime.strptime(times[0], "%H%M").time())
    )
    book_every_therapist(start, patient)
    assert times[0] not in re.findall(rf'href="{path}(\d{{4}})/"', cached_twice(client, path))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE booking_appointment SET status = %s, cancelled_at = %s",
            [Appointment.Status.CANCELLED, timezone.now()],
        )
    assert times[0] in re.findall(rf'href="{path}(\d{{4}})/"', client.get(path).content.decode())


def test_booking_rules_changed_in_the_admin_way_apply_to_the_next_page(client):
    assert free_days(cached_twice(client, MONTH))
    BookingRules.objects.update(max_days_ahead=1, min_notice_minutes=3 * 24 * 60)
    assert free_days(client.get(MONTH).content.decode()) == []


def details_path(client):
    day = free_days(client.get(MONTH).content.decode())[0]
    times = re.findall(
        rf'href="{MONTH}{day}/(\d{{4}})/"', client.get(f"{MONTH}{day}/").content.decode()
    )
    return f"{MONTH}{day}/{times[-1]}/"


def secrets_of(page):
    return (
        re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1),
        re.search(r'name="submission_key" value="([^"]+)"', page).group(1),
    )


def test_visitors_of_one_details_form_never_share_its_secrets_and_each_can_book(client, patient):
    from django.test import Client

    path = details_path(client)
    first_visitor, second_visitor = (
        Client(enforce_csrf_checks=True),
        Client(enforce_csrf_checks=True),
    )
    first = first_visitor.get(path)
    second = second_visitor.get(path)
    assert [t.name for t in second.templates] == []  # the blank form came from the cache
    assert first.status_code == second.status_code == 200
    first_secrets, second_secrets = (
        secrets_of(first.content.decode()),
        secrets_of(second.content.decode()),
    )
    assert first_secrets[0] != second_secrets[0] and first_secrets[1] != second_secrets[1]
    assert "csrf-token-goes-here" not in second.content.decode()
    assert settings_cookie(second) and second["Cache-Control"] == first["Cache-Control"]
    page = second.content.decode()
    data = {
        "csrfmiddlewaretoken": second_secrets[0],
        "submission_key": second_secrets[1],
        "slot": re.search(r'name="slot" value="([^"]+)"', page).group(1),
        "name": "Pat Example",
        "email": "pat@example.com",
        "phone": "(209) 555-0142",
        "consent": "on",
        **{name: "no" for name in re.findall(r'name="(intake_[a-z_]+)"', page)},
    }
    booked = second_visitor.post(path, data)
    assert booked.status_code == 303, booked.content.decode()[:2000]
    # On some days another therapist and room are still free then: take them too, so the
    # time is full whatever day the suite runs on.
    day, hhmm = path.removeprefix(MONTH).strip("/").split("/")
    book_every_therapist(
        timezone.make_aware(
            datetime.combine(local_day(day), datetime.strptime(hhmm, "%H%M").time())
        ),
        patient,
    )
    # Booked: the same address is no blank form any more, for anybody.
    assert Client().get(path).status_code == 409


def settings_cookie(response):
    from django.conf import settings

    return settings.CSRF_COOKIE_NAME in response.cookies


def without_secrets(page):
    """`page` with its CSRF token and submission key blanked: what every visitor shares."""
    page = re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]+', r"\1", page)
    return re.sub(r'(name="submission_key" value=")[^"]+', r"\1", page)


def csrf_cookie(headers):
    from django.conf import settings

    return re.search(rf"{settings.CSRF_COOKIE_NAME}=(\w+);", headers["Set-Cookie"]).group(1)


def test_the_details_form_is_answered_before_django_with_each_visitors_own_secrets():
    from django.test import Client

    path = details_path(Client())
    status, fresh, body, handled = wsgi_get(path)
    assert (status, fresh["X-Page-Cache"], handled) == ("200 OK", "miss", True)
    status, hit, hit_body, handled = wsgi_get(path)
    assert (status, hit["X-Page-Cache"], handled) == ("200 OK", "hit", False)
    page, hit_page = body.decode(), hit_body.decode()
    assert "goes-here" not in hit_page
    # Each visitor their own token, key and cookie; everything else as the render sent it.
    assert secrets_of(hit_page)[0] != secrets_of(page)[0]
    assert secrets_of(hit_page)[1] != secrets_of(page)[1]
    assert csrf_cookie(hit) != csrf_cookie(fresh)
    assert without_secrets(hit_page) == without_secrets(page)
    same = {"X-Page-Cache": "", "Set-Cookie": ""}
    assert {**hit, **same} == {**fresh, **same}
    assert "no-store" in hit["Cache-Control"] and "Cookie" in hit["Vary"]
    assert int(hit["Content-Length"]) == len(hit_body)


def test_a_visitor_answered_early_with_their_own_cookie_books_with_that_form():
    from django.conf import settings
    from django.test import Client

    path = details_path(Client())
    cookie = csrf_cookie(wsgi_get(path)[1])  # the first visit: a render, and a new cookie
    status, headers, body, handled = wsgi_get(
        path, HTTP_COOKIE=f"{settings.CSRF_COOKIE_NAME}={cookie}"
    )
    assert (headers["X-Page-Cache"], handled) == ("hit", False)
    assert csrf_cookie(headers) == cookie  # kept, its expiry renewed, as Django does
    page = body.decode()
    token, key = secrets_of(page)
    visitor = Client(enforce_csrf_checks=True)
    visitor.cookies[settings.CSRF_COOKIE_NAME] = cookie
    booked = visitor.post(path, form_data(page, token, key))
    assert booked.status_code == 303, booked.content.decode()[:2000]
    assert Appointment.objects.filter(submission_key=key).exists()


def form_data(page, token, key):
    return {
        "csrfmiddlewaretoken": token,
        "submission_key": key,
        "slot": re.search(r'name="slot" value="([^"]+)"', page).group(1),
        "name": "Pat Example",
        "email": "pat@example.com",
        "phone": "(209) 555-0142",
        "consent": "on",
        **{name: "no" for name in re.findall(r'name="(intake_[a-z_]+)"', page)},
    }


def shared_time(client):
    """A details step (no preference) at a time two therapists are free."""
    for day in free_days(client.get(MONTH).content.decode()):
        counts = {}
        for therapist in Therapist.objects.all():
            page = client.get(f"/book/massage-60/{therapist.slug}/{day}/").content.decode()
            for hhmm in re.findall(
                rf'href="/book/massage-60/{therapist.slug}/{day}/(\d{{4}})/"', page
            ):
                counts[hhmm] = counts.get(hhmm, 0) + 1
        shared = sorted(hhmm for hhmm, count in counts.items() if count >= 2)
        if shared:
            return f"{MONTH}{day}/{shared[-1]}/"
    raise AssertionError("the demo schedule has no time two therapists share")


def test_back_on_the_time_they_just_booked_a_visitor_sees_their_booking_not_the_stored_form(
    client,
):
    from django.test import Client

    path = shared_time(client)
    booker = Client()
    page = booker.get(path).content.decode()
    assert booker.post(path, form_data(page, *secrets_of(page))).status_code == 303
    # Another therapist and room are still free then: strangers get the stored blank form...
    assert Client().get(path).status_code == 200
    assert Client().get(path)["X-Page-Cache"] == "hit"
    # ...and the one who booked it their booking, not a form to book it twice.
    back = booker.get(path)
    assert back.status_code == 200 and "X-Page-Cache" not in back
    assert 'name="submission_key"' not in back.content.decode()
    assert "You have booked this time" in back.content.decode()


def test_a_stored_details_form_gives_way_when_the_time_passes_the_online_change_cut_off(
    client, still_clock, settings
):
    settings.PAGE_CACHE_SECONDS = 3600  # so only the cut-off can end the stored page
    rules = BookingRules.current()
    tz = timezone.get_default_timezone()
    # A free time whose cut-off comes in five minutes, and not just after a midnight (which
    # ends every stored page anyway).
    for days in range(1, 15):
        day = timezone.localdate() + timedelta(days=days)
        still_clock.move_to(datetime.combine(day, datetime.min.time(), tzinfo=tz))
        page = client.get(f"{MONTH}{day}/").content.decode()
        starts = [
            datetime.combine(day, datetime.strptime(hhmm, "%H%M").time(), tzinfo=tz)
            for hhmm in re.findall(rf'href="{MONTH}{day}/(\d{{4}})/"', page)
        ]
        closes = [timezone.localtime(rules.online_change_closes(s)) for s in starts]
        fitting = [s for s, c in zip(starts, closes, strict=True) if c.hour or c.minute >= 10]
        if fitting:
            start = fitting[0]
            break
    else:
        raise AssertionError("no day in the demo schedule has such a time")
    still_clock.move_to(rules.online_change_closes(start) - timedelta(minutes=5))
    path = f"{MONTH}{start.date()}/{start:%H%M}/"
    assert "short-notice" not in cached_twice(client, path)
    still_clock.move_to(rules.online_change_closes(start) + timedelta(minutes=1))
    again = client.get(path)
    assert (again.status_code, again["X-Page-Cache"]) == (200, "miss")
    assert "short-notice" in again.content.decode()


def test_the_month_is_answered_before_django_until_the_schedule_changes():
    status, headers, body, handled = wsgi_get(MONTH)
    assert (headers["X-Page-Cache"], handled) == ("miss", True)
    status, headers, hit, handled = wsgi_get(MONTH)
    assert (status, headers["X-Page-Cache"], handled) == ("200 OK", "hit", False)
    first = free_days(hit.decode())[0]
    off_all_day(local_day(first))  # no signal: only the schedule's version can tell
    status, headers, body, handled = wsgi_get(MONTH)
    assert (headers["X-Page-Cache"], handled) == ("miss", True)
    assert first not in free_days(body.decode())
