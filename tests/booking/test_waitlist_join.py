"""Joining and leaving the waitlist as a patient meets it, and what staff can export or erase."""

import json
import re
import secrets
from datetime import date, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import translation

from booking.models import WaitlistEntry
from clinic import personal_data as site_data
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def join_url(therapist=None, language="en"):
    with translation.override(language):
        return reverse(
            "booking:waitlist", args=["massage-60", therapist.slug if therapist else "any"]
        )


def form(next_monday, **changes):
    data = {
        "when": "range",
        "first_day": next_monday.isoformat(),
        "last_day": (next_monday + timedelta(days=4)).isoformat(),
        "parts": ["morning", "evening"],
        "name": "Pat Example",
        "email": "pat@example.com",
        "phone": "(209) 555-0142",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def leave_path(email):
    """The path of the leave link in an outbox email's text."""
    return urlsplit(re.search(r"https?://\S+/waitlist/leave/\S+/", email.body_text).group(0)).path


def links_in(page):
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', page)]


def test_the_month_view_offers_the_waitlist_for_its_month(client, therapist, next_monday):
    url = reverse("booking:day", args=["massage-60", therapist.slug])
    page = client.get(url, {"month": f"{next_monday:%Y-%m}"}).content.decode()
    assert "Nothing suits? Join the waitlist" in page
    assert f"{join_url(therapist)}?month={next_monday:%Y-%m}" in links_in(page)


def test_a_day_with_nothing_free_offers_the_waitlist_for_that_day(client, therapist, next_monday):
    saturday = next_monday - timedelta(days=2)  # the fixture's therapist works weekdays only
    page = client.get(reverse("booking:time", args=["massage-60", "any", saturday])).content
    page = page.decode()
    assert "No free times are left on this day." in page
    assert f"{join_url()}?day={saturday.isoformat()}" in links_in(page)


def test_a_day_with_free_times_does_not_offer_the_waitlist(client, next_monday):
    page = client.get(reverse("booking:time", args=["massage-60", "any", next_monday])).content
    assert b"Join the waitlist" not in page


def test_the_form_starts_with_the_day_the_patient_came_from(client, next_monday):
    page = client.get(join_url(), {"day": next_monday.isoformat()}).content.decode()
    assert f'name="first_day" value="{next_monday.isoformat()}"' in page
    assert f'name="last_day" value="{next_monday.isoformat()}"' in page


def test_a_damaged_day_in_the_link_still_shows_the_form(client):
    response = client.get(join_url(), {"day": "2027-02-30", "month": "nonsense"})
    assert response.status_code == 200
    assert b'name="first_day"' in response.content


def test_joining_puts_the_patient_on_the_list_and_emails_a_link_to_leave_it(
    client, therapist, next_monday
):
    response = client.post(join_url(therapist), form(next_monday))

    assert response.status_code == 302 and response.url == reverse("booking:waitlist_joined")
    entry = WaitlistEntry.objects.get()
    assert (entry.service.slug, entry.therapist, entry.first_day) == (
        "massage-60",
        therapist,
        next_monday,
    )
    assert entry.parts == {"morning", "evening"} and entry.state == "waiting"
    assert entry.language == "en" and str(entry.phone) == "+12095550142"
    (email,) = OutgoingEmail.objects.filter(to=["pat@example.com"])
    assert email.subject.startswith("You are on the waitlist")
    assert client.get(leave_path(email)).status_code == 200


def test_joining_in_spanish_writes_the_email_in_spanish_with_a_spanish_link(client, next_monday):
    response = client.post(join_url(language="es"), form(next_monday, email="ana@example.com"))
    assert response.status_code == 302 and response.url.startswith("/es/")
    assert WaitlistEntry.objects.get().language == "es"
    (email,) = OutgoingEmail.objects.filter(to=["ana@example.com"])
    assert "lista de espera" in email.subject
    assert leave_path(email).startswith("/es/")


# --- single days, ticked one by one ----------------------------------------------------------
class Checkboxes(HTMLParser):
    """{value: checked} of the page's inputs called `name`."""

    def __init__(self, name):
        super().__init__()
        self.name, self.found = name, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == self.name:
            self.found[attrs.get("value")] = "checked" in attrs


def boxes(page, name):
    reader = Checkboxes(name)
    reader.feed(page)
    return reader.found


def ticked(page, name):
    return sorted(value for value, on in boxes(page, name).items() if on)


def is_a_date(text):
    try:
        return bool(date.fromisoformat(text))
    except ValueError:
        return False


def test_joining_from_a_full_day_ticks_that_day_among_the_two_weeks_from_it(client, next_monday):
    saturday = next_monday - timedelta(days=2)

    page = client.get(join_url(), {"day": saturday.isoformat()}).content.decode()

    assert ticked(page, "when") == ["days"]
    assert ticked(page, "days") == [saturday.isoformat()]
    assert list(boxes(page, "days")) == [
        (saturday + timedelta(days=n)).isoformat() for n in range(14)
    ]
    assert f"{saturday:%a} {saturday.day} {saturday:%b}" in page  # "Sat 5 Dec"


def test_from_a_month_or_nowhere_the_form_starts_with_a_range(client, next_monday):
    for query in ({"month": f"{next_monday:%Y-%m}"}, {}):
        page = client.get(join_url(), query).content.decode()
        assert ticked(page, "when") == ["range"]
        assert ticked(page, "days") == []


def test_joining_for_some_days_only_lists_those_days_and_says_so_in_the_email(client, next_monday):
    wednesday, friday = next_monday + timedelta(days=2), next_monday + timedelta(days=4)
    data = form(next_monday, when="days", days=[friday.isoformat(), wednesday.isoformat()])

    assert client.post(join_url(), data).status_code == 302

    entry = WaitlistEntry.objects.get()
    assert (entry.first_day, entry.last_day) == (wednesday, friday)
    assert entry.for_matching().days == {wednesday, friday}
    (email,) = OutgoingEmail.objects.filter(to=["pat@example.com"])
    assert f"on these days: {wednesday:%A, %B} {wednesday.day}; {friday:%A, %B} {friday.day}." in (
        email.body_text
    )


def test_a_range_ignores_days_ticked_under_the_other_choice(client, next_monday):
    data = form(next_monday, days=[next_monday.isoformat()])  # when=range
    assert client.post(join_url(), data).status_code == 302
    entry = WaitlistEntry.objects.get()
    assert entry.days == [] and entry.last_day == next_monday + timedelta(days=4)


def test_spanish_patients_tick_days_named_in_spanish_and_read_them_in_spanish(client, next_monday):
    page = client.get(join_url(language="es"), {"day": next_monday.isoformat()}).content.decode()
    assert "Solo los días que marque" in page and f"lun {next_monday.day} " in page

    data = form(next_monday, when="days", days=[next_monday.isoformat()], email="ana@example.com")
    assert client.post(join_url(language="es"), data).status_code == 302
    (email,) = OutgoingEmail.objects.filter(to=["ana@example.com"])
    assert f"en estos días: lunes {next_monday.day} de" in email.body_text


@pytest.mark.parametrize(
    "days, message",
    [
        ([], "Tick at least one day."),
        (["2000-01-03"], "Choose days from today on."),
        (["2999-01-04"], "Online booking is open up to"),
        (["next tuesday"], "Tick days from the list."),
        (["2027-02-30"], "Tick days from the list."),
        (["\x00"], "Tick days from the list."),
        ("many", "Tick at most 31 days, or choose a date range instead."),
    ],
)
def test_bad_days_are_refused_with_a_message_and_keep_what_was_ticked(
    client, next_monday, days, message
):
    if days == "many":
        days = [(next_monday + timedelta(days=n)).isoformat() for n in range(32)]
    kept = next_monday.isoformat()
    data = form(next_monday, when="days", days=[*days, kept] if days else [], name="Pat Typed")
    url = join_url() + f"?day={kept}"

    response = client.post(url, data)

    page = response.content.decode()
    assert response.status_code == 400
    assert message in unescape(page)
    assert 'value="Pat Typed"' in page and ticked(page, "when") == ["days"]
    if days:
        assert kept in ticked(page, "days")
        # A day that is a date, even one refused, stays ticked for the patient to untick.
        assert all(day in ticked(page, "days") for day in days if is_a_date(day))
    assert not WaitlistEntry.objects.exists() and not OutgoingEmail.objects.exists()


def test_neither_choice_is_refused_with_a_message(client, next_monday):
    for when in (None, "both", "\x00"):
        response = client.post(join_url(), form(next_monday, when=when))
        assert response.status_code == 400
        assert "Choose a date range or days to tick." in response.content.decode()
    assert not WaitlistEntry.objects.exists()


def test_the_answer_is_the_same_whether_or_not_the_address_is_already_listed(client, next_monday):
    first = client.post(join_url(), form(next_monday))
    again = client.post(join_url(), form(next_monday, parts=["afternoon"]))

    assert (first.status_code, first.url) == (again.status_code, again.url)
    entry = WaitlistEntry.objects.get()  # updated, keeping its place in line
    assert entry.parts == {"afternoon"}
    assert OutgoingEmail.objects.filter(to=["pat@example.com"]).count() == 2
    assert client.get(first.url).content == client.get(again.url).content


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"parts": None}, "parts", "Choose at least one part of the day."),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"first_day": "2027-02-30"}, "first_day", "Enter a date like 2027-03-01."),
        ({"last_day": "2000-01-01"}, "last_day", "The last day cannot be before the first."),
        ({"first_day": "2000-01-01"}, "first_day", "Choose a day from today on."),
        ({"last_day": "2999-01-01"}, "last_day", "Online booking is open up to"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_keeps_what_was_typed(
    client, next_monday, changes, field, message
):
    response = client.post(join_url(), form(next_monday, name="Pat Typed-This", **changes))
    page = response.content.decode()
    assert response.status_code == 400
    assert message in unescape(page)
    assert 'value="Pat Typed-This"' in page
    assert not WaitlistEntry.objects.exists() and not OutgoingEmail.objects.exists()


def test_too_many_joins_from_one_address_get_a_friendly_429(client, next_monday, settings):
    settings.BOOKING_RATE_LIMIT = "3/h"
    address = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::2"
    codes = [client.post(join_url(), {}, REMOTE_ADDR=address).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    assert client.get(join_url(), REMOTE_ADDR=address).status_code == 200


def test_the_leave_link_asks_first_then_takes_the_entry_off_the_list(client, next_monday):
    client.post(join_url(), form(next_monday))
    email = OutgoingEmail.objects.get()
    leave = leave_path(email)

    assert b"Leave the waitlist" in client.get(leave).content
    assert WaitlistEntry.objects.get().state == "waiting"  # a GET (a mail scanner) changes nothing

    response = client.post(leave)
    assert response.status_code == 200
    assert b"not on the waitlist for this any more" in response.content
    assert WaitlistEntry.objects.get().state == "left"
    assert client.post(leave).status_code == 200  # twice is fine


def test_a_tampered_leave_link_is_a_404(client, next_monday):
    client.post(join_url(), form(next_monday))
    entry = WaitlistEntry.objects.get()
    url = reverse("booking:leave_waitlist", kwargs={"token": f"{entry.pk}:forged"})
    assert client.post(url).status_code == 404
    assert WaitlistEntry.objects.get().state == "waiting"


def test_export_and_erase_include_the_waitlist(client, next_monday):
    client.post(join_url(), form(next_monday, email="Pat@Example.com"))
    client.post(join_url(), form(next_monday, email="sam@example.com", name="Sam"))

    data = json.loads(json.dumps(site_data.export(email="pat@example.com")))
    (exported,) = data["waitlist"]
    assert exported["name"] == "Pat Example" and exported["parts_of_day"] == ["evening", "morning"]
    assert exported["first_day"] == next_monday.isoformat()

    assert site_data.erase(email="pat@example.com")["waitlist"] == 1
    assert list(WaitlistEntry.objects.values_list("email", flat=True)) == ["sam@example.com"]


def test_entries_expire_after_their_last_day_and_are_later_deleted(client, next_monday):
    client.post(join_url(), form(next_monday))
    entry = WaitlistEntry.objects.get()
    last = timezone_at(entry.last_day)

    assert site_data.apply_retention(now=last)["waitlist_expired"] == 0
    counts = site_data.apply_retention(now=last + timedelta(days=1))
    assert counts["waitlist_expired"] == 1 and counts["waitlist_deleted"] == 0
    assert WaitlistEntry.objects.get().state == "expired"
    assert site_data.apply_retention(now=last + timedelta(days=31))["waitlist_deleted"] == 1
    assert not WaitlistEntry.objects.exists()


def timezone_at(day):
    from datetime import datetime, time

    from django.utils import timezone

    return datetime.combine(day, time(12), tzinfo=timezone.get_default_timezone())


def test_staff_see_the_list_with_a_way_to_contact_each_and_can_take_them_off(
    client, staff_user, next_monday
):
    client.post(join_url(), form(next_monday))
    entry = WaitlistEntry.objects.get()
    client.force_login(staff_user)

    listing = client.get("/admin/booking/waitlistentry/").content.decode()
    assert 'href="mailto:pat@example.com"' in listing and "(209) 555-0142" in listing

    response = client.post(
        "/admin/booking/waitlistentry/",
        {"action": "take_off_the_list", "_selected_action": [entry.pk]},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.state == "left"
