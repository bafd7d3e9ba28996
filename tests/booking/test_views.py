"""The booking steps as a patient meets them, including every way to get them wrong."""

import re
import secrets
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from booking.models import Appointment, Service
from clinic.models import Closure

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def details_url(therapist, start, service_slug="massage-60"):
    return reverse(
        "booking:details",
        args=[service_slug, therapist.slug if therapist else "any", start.date(), start.time()],
    )


def form_data(client, url, **changes):
    """What the details form would send, read from the page (its one-time key and slot)."""
    page = client.get(url).content.decode()
    data = {
        "slot": re.search(r'name="slot" value="([^"]+)"', page).group(1),
        "submission_key": re.search(r'name="submission_key" value="([^"]+)"', page).group(1),
        "name": "Pat Example",
        "email": "pat@example.com",
        "phone": "(209) 555-0142",
        "notes": "Left calf is tight.",
        "consent": "on",
        "intake_clot_signs": "no",
        "intake_surgery_or_immobility": "no",
        "intake_blood_thinners": "no",
        "intake_pregnant": "no",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_first_step_lists_bookable_treatments_only(client, service):
    Service.objects.create(name="Hidden", slug="hidden", duration_minutes=30, is_active=False)
    Service.objects.create(name="Nobody offers", slug="nobody", duration_minutes=30)
    page = client.get(reverse("booking:start")).content.decode()
    assert "60-minute massage" in page
    assert "Hidden" not in page and "Nobody offers" not in page


def test_the_therapist_step_offers_no_preference_and_who_offers_the_service(
    client, therapist, make_therapist
):
    away = make_therapist("Away Person", is_active=False)
    page = client.get(reverse("booking:therapist", args=["massage-60"])).content.decode()
    assert "No preference" in page and therapist.name in page and away.name not in page


def test_the_month_links_days_with_free_times_and_not_a_closed_day(client, next_monday, seeded):
    Closure.objects.create(clinic=seeded, starts_on=next_monday, ends_on=next_monday)
    url = reverse("booking:day", args=["massage-60", "any"]) + f"?month={next_monday:%Y-%m}"
    page = client.get(url).content.decode()
    tuesday = next_monday.replace(day=next_monday.day + 1) if next_monday.day < 28 else None
    assert f'/book/massage-60/any/{next_monday.isoformat()}/"' not in page
    if tuesday:
        assert f'/book/massage-60/any/{tuesday.isoformat()}/"' in page


@pytest.mark.parametrize(
    ("month", "status"), [("1999-01", 400), ("2999-01", 400), ("nonsense", 400), ("2026-13", 400)]
)
def test_a_month_outside_the_window_or_malformed_says_so(client, month, status):
    response = client.get(reverse("booking:day", args=["massage-60", "any"]), {"month": month})
    assert response.status_code == status
    assert "Pick a day" in response.content.decode()


def test_the_time_step_lists_free_times_in_the_clinics_zone(client, therapist, next_monday):
    response = client.get(reverse("booking:time", args=["massage-60", therapist.slug, next_monday]))
    page = response.content.decode()
    assert "9:00 AM" in page and "12:00 PM" not in page  # lunch
    assert re.search(r"local time \((PST|PDT)\)", page)


@pytest.mark.parametrize(
    ("now_utc", "day", "zone"),
    [
        # 01:15 PST, the second time round of fall-back's repeated hour; Monday is PST.
        (datetime(2027, 11, 7, 9, 15, tzinfo=UTC), date(2027, 11, 8), "PST"),
        # A PDT Saturday looking at the first Monday after the clocks go back: PST.
        (datetime(2027, 10, 30, 17, 0, tzinfo=UTC), date(2027, 11, 8), "PST"),
        # A PST Saturday looking at the first Monday after spring-forward: PDT.
        (datetime(2027, 3, 6, 18, 0, tzinfo=UTC), date(2027, 3, 15), "PDT"),
    ],
)
def test_the_time_step_names_the_zone_of_the_day_it_shows(client, therapist, now_utc, day, zone):
    with time_machine.travel(now_utc, tick=False):
        page = client.get(reverse("booking:time", args=["massage-60", therapist.slug, day]))
    assert page.status_code == 200
    assert f"local time ({zone})" in page.content.decode()


def test_late_on_a_months_last_day_the_calendar_opens_on_the_next_month(client, therapist):
    # New Year's Eve, 23:55 in Stockton: nothing is left in December to book.
    with time_machine.travel(datetime(2027, 1, 1, 7, 55, tzinfo=UTC), tick=False):
        page = client.get("/book/massage-60/any/").content.decode()
        december = client.get("/book/massage-60/any/?month=2026-12").content.decode()
    assert "January 2027" in page
    assert re.search(r'href="/book/massage-60/any/2027-01-\d\d/"', page)
    assert "December 2026" in december  # asked for by name, December is still shown
    assert not re.search(r'href="/book/massage-60/any/2026-12-\d\d/"', december)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/book/massage-60/any/2001-01-01/", 400),
        ("/book/massage-60/any/2999-01-01/", 400),
        ("/book/massage-60/any/2026-02-30/", 404),
        ("/book/massage-60/any/2026-12-01/2599/", 404),
        ("/book/no-such-service/", 404),
        ("/book/massage-60/nobody-here/", 404),
        ("/book/appointment/not-a-real-token/", 404),
        ("/book/appointment/" + "x" * 300 + "/", 404),
        ("/book/appointment/not-a-real-token/appointment.ics", 404),
    ],
)
def test_unknown_or_impossible_addresses_get_a_clear_4xx(client, path, status):
    response = client.get(path)
    assert response.status_code == status


def test_an_inactive_therapist_cannot_be_chosen(client, therapist, at):
    therapist.is_active = False
    therapist.save()
    assert client.get(details_url(therapist, at(10))).status_code == 404


def test_booking_through_every_step_confirms_and_offers_the_ics(client, therapist, at):
    url = details_url(therapist, at(10))
    response = client.post(url, form_data(client, url))
    assert response.status_code == 303
    appointment = Appointment.objects.get()
    assert response["Location"] == reverse("booking:confirmation", args=[appointment.public_token])
    assert str(appointment.pk) not in response["Location"].split("/")
    page = client.get(response["Location"])
    assert page["Cache-Control"] == "private, no-store"
    text = page.content.decode()
    assert "You are booked" in text and "Maria Lopez" in text and "(209) 555-0142" in text
    ics = client.get(reverse("booking:ics", args=[appointment.public_token]))
    assert ics["Content-Type"].startswith("text/calendar")
    event = Calendar.from_ical(ics.content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == at(10)
    assert appointment.patient_phone.as_e164 == "+12095550142"


def test_no_preference_books_a_free_therapist(client, at):
    url = details_url(None, at(10))
    assert client.post(url, form_data(client, url)).status_code == 303
    assert Appointment.objects.get().therapist.name == "Maria Lopez"


def test_a_double_clicked_submit_books_once(client, therapist, at):
    url = details_url(therapist, at(10))
    data = form_data(client, url)
    first, second = client.post(url, data), client.post(url, data)
    assert first["Location"] == second["Location"]
    assert Appointment.objects.count() == 1


def test_back_to_the_details_of_a_time_just_booked_says_so_to_that_visitor_only(
    client, therapist, at
):
    url = details_url(therapist, at(10))
    booked = client.post(url, form_data(client, url))
    assert booked.status_code == 303

    back = client.get(url)  # the phone's Back button from the confirmation page
    assert back.status_code == 200
    assert {"private", "no-store"} <= set(back["Cache-Control"].replace(" ", "").split(","))
    page = back.content.decode()
    assert "You have booked this time" in page
    assert f'href="{booked["Location"]}"' in page
    assert "is not free" not in page

    # Anyone else, or a forged cookie, is told the time is taken and sees no link to it.
    signed = client.cookies["booked"].value
    token = booked["Location"].rstrip("/").rsplit("/", 1)[-1]
    last = "A" if signed[-1] != "A" else "B"
    for forged in (token, signed[:-1] + last):
        stranger = Client()
        stranger.cookies["booked"] = forged
        page = stranger.get(url).content.decode()
        assert "You have booked this time" not in page and booked["Location"] not in page
    stranger = Client()
    response = stranger.get(url)
    assert response.status_code == 409
    assert booked["Location"] not in response.content.decode()


def test_back_to_a_no_preference_time_just_booked_says_so(client, at):
    url = details_url(None, at(10))
    booked = client.post(url, form_data(client, url))
    page = client.get(url).content.decode()
    assert "You have booked this time" in page and booked["Location"] in page


def test_back_to_a_no_preference_time_another_therapist_still_has_says_so(
    client, at, make_therapist
):
    make_therapist("Omar Haddad")  # so the time stays free with somebody after booking it
    url = details_url(None, at(10))
    booked = client.post(url, form_data(client, url))
    back = client.get(url)
    page = back.content.decode()
    assert "You have booked this time" in page and booked["Location"] in page
    assert 'name="submission_key"' not in page  # no blank form to book it a second time
    assert Appointment.objects.count() == 1
    assert Client().get(url).status_code == 200  # anyone else may still book it


def test_a_taken_time_gets_409_with_everything_typed_kept_and_fresh_times(
    client, therapist, at, patient
):
    url = details_url(therapist, at(10))
    data = form_data(client, url, name="Sam <b>Typed</b>", notes="Kept notes")
    from booking.services import book_appointment

    book_appointment(
        service=therapist.services.get(), therapist=therapist, start=at(10), patient=patient
    )
    response = client.post(url, data)
    assert response.status_code == 409
    page = response.content.decode()
    assert "just taken" in page
    assert "Sam &lt;b&gt;Typed&lt;/b&gt;" in page and "Kept notes" in page
    fresh = re.findall(r'type="radio"[^>]*name="slot" value="([^"]+)"', page)
    assert fresh and data["slot"] not in fresh
    retry = {**data, "slot": fresh[0]}
    assert client.post(url, retry).status_code == 303
    assert Appointment.objects.count() == 2


def test_opening_the_details_of_a_taken_time_offers_nearby_times(
    client, therapist, at, appointment
):
    response = client.get(details_url(therapist, at(10)))
    assert response.status_code == 409
    assert (
        # 09:00 would run into the 10:00 visit and 11:30 into lunch: the nearest is 13:00.
        details_url(therapist, at(13)) in response.content.decode()
    )


HOSTILE = {
    "bad email": ({"email": "not-an-email"}, "Enter a valid email address"),
    "bad phone": ({"phone": "12"}, "valid phone number"),
    "long notes": ({"notes": "x" * 1001}, "at most 1000 characters"),
    "no consent": ({"consent": None}, "agree to the cancellation policy"),
    "no name": ({"name": "   "}, "This field is required"),
    "control characters": ({"name": "Pat\x07"}, "Enter your name"),
    "null byte": ({"name": "Pat\x00"}, "Null characters are not allowed"),
    "tampered slot": ({"slot": "2001-01-01T00:00:00+00:00"}, "Choose one of the times offered"),
    "tampered key": ({"submission_key": "../../etc"}, "This form arrived damaged"),
    "intake unanswered": ({"intake_pregnant": None}, "Please answer yes or no."),
    "intake nonsense": ({"intake_blood_thinners": "maybe"}, "Select a valid choice"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_input_gets_the_form_again_with_a_message_and_the_input_kept(
    client, therapist, at, case
):
    changes, message = HOSTILE[case]
    url = details_url(therapist, at(10))
    response = client.post(url, form_data(client, url, **changes))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'value="pat@example.com"' in page or case == "bad email"
    assert Appointment.objects.count() == 0


def test_a_time_in_the_past_or_beyond_the_window_cannot_be_posted(client, therapist, at):
    url = details_url(therapist, at(10, days=7 * 12))
    response = client.post(url, {"name": "Pat"})
    assert response.status_code == 400
    assert "Online booking is open" in response.content.decode()


def test_too_many_booking_posts_from_one_address_get_a_friendly_429(
    client, therapist, at, settings
):
    settings.BOOKING_RATE_LIMIT = "3/h"
    # The counters live in the cache (Redis in pass (b), kept between runs): a fresh address.
    address = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"
    url = details_url(therapist, at(10))
    codes = [client.post(url, {"name": "x"}, REMOTE_ADDR=address).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    response = client.post(url, {"name": "x"}, REMOTE_ADDR=address)
    assert "Too many tries" in response.content.decode()
    assert "1-209-915-2296" in response.content.decode()
    assert client.get(url, REMOTE_ADDR=address).status_code == 200  # reading is fine


# --- issue 16, part 6: small confusions ------------------------------------------------------
def _frozen(local):
    """An instant in the clinic's zone (for time_machine)."""
    from django.utils import timezone as tz

    return local.replace(tzinfo=tz.get_default_timezone())


def test_the_soonest_free_time_leads_to_that_times_details_step(client, therapist):
    # Wednesday 4 March 2026, 08:00: two hours' notice makes 10:00 the soonest free time.
    with time_machine.travel(_frozen(datetime(2026, 3, 4, 8, 0)), tick=False):
        page = client.get(reverse("booking:day", args=["massage-60", "any"])).content.decode()
        link = re.search(r'Soonest free time: <a href="([^"]+)">([^<]+)</a>', page)
        assert link, "no soonest free time"
        assert link.group(1) == "/book/massage-60/any/2026-03-04/1000/"
        assert "10:00 AM" in link.group(2)
        details = client.get(link.group(1))
        assert details.status_code == 200
        assert 'name="submission_key"' in details.content.decode()


def _day_cells(page):
    """{day of the month: the cell's text as read (visible and screen-reader text)}."""
    cells = {}
    grid = page[page.index('<table class="month-grid">') :]
    grid = grid[: grid.index("</table>")]
    for cell in re.findall(r"<td>(.*?)</td>", grid, flags=re.S):
        if "day-outside" in cell:
            continue
        text = re.sub(r"<[^>]+>", " ", cell)
        number = int(text.split()[0])
        cells[number] = " ".join(text.split()[1:])
    return cells


def test_days_without_free_times_say_in_words_whether_past_fully_booked_or_closed(
    client, therapist, service, patient, clinic
):
    from booking import availability, services

    monday = date(2026, 3, 9)
    Closure.objects.create(clinic=clinic, starts_on=monday, ends_on=monday)
    with time_machine.travel(_frozen(datetime(2026, 3, 4, 8, 0)), tick=False):
        thursday = date(2026, 3, 5)
        # Book Thursday full: every free start, until none is left.
        while free := availability.free_starts(
            service=service, therapists=[therapist], first_day=thursday, last_day=thursday
        )[therapist.pk]:
            services.book_appointment(
                service=service, therapist=therapist, start=free[0], patient=patient
            )
        url = reverse("booking:day", args=["massage-60", therapist.slug])
        cells = _day_cells(client.get(url).content.decode())
    assert "past" in cells[3] and "full" not in cells[3]  # Tuesday, before today
    assert "no free time left" in cells[5] and cells[5].startswith("full")  # seen and heard
    assert "closed" in cells[7] and "full" not in cells[7]  # Saturday: nobody works
    assert "closed" in cells[9]  # a clinic closure
    assert "free time" in cells[6]  # Friday: open and free
    assert "past" not in cells[5]


def test_the_phone_field_says_its_type_once(client, therapist, at):
    page = client.get(details_url(therapist, at(10))).content.decode()
    tag = re.search(r'<input[^>]*name="phone"[^>]*>', page).group(0)
    assert re.findall(r"\stype=", tag) == [" type="] and 'type="tel"' in tag


def test_today_with_nothing_left_to_book_is_not_called_full(client, therapist):
    # Wednesday 4 March 2026, 16:30: the last hour of the day is inside the notice.
    with time_machine.travel(_frozen(datetime(2026, 3, 4, 16, 30)), tick=False):
        page = client.get(reverse("booking:day", args=["massage-60", therapist.slug]))
    cells = _day_cells(page.content.decode())
    assert "no more times today" in cells[4]
    assert "full" not in cells[4]
    assert "free time" in cells[5]  # Thursday is bookable


@pytest.mark.parametrize(("prefix", "heading"), [("", "This form could not be sent"), ("/es", "")])
def test_a_form_sent_without_its_cookie_comes_back_kept_and_goes_through_again(
    therapist, at, prefix, heading
):
    browser = Client(enforce_csrf_checks=True)
    url = prefix + details_url(therapist, at(10))
    page = browser.get(url).content.decode()
    data = form_data(browser, url, name="Sam Cookie")
    data["csrfmiddlewaretoken"] = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page
    ).group(1)
    browser.cookies.clear()  # blocked, or gone while the page stood open

    refused = browser.post(url, data)
    assert refused.status_code == 403
    assert "no-store" in refused["Cache-Control"]
    text = refused.content.decode()
    assert 'value="Sam Cookie"' in text  # nothing typed is lost
    assert (heading or "No pudimos enviar este formulario") in text
    assert Appointment.objects.count() == 0

    resent = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text))
    again = browser.post(url, resent)  # the page's fresh token and cookie
    assert again.status_code == 303, again.content.decode()[:300]
    assert Appointment.objects.get().patient_name == "Sam Cookie"
