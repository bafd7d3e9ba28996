"""A therapist's own calendar feed, read as a phone's calendar app would: fetched over HTTP by
its secret URL and parsed with vobject (not the icalendar package that writes it)."""

from datetime import UTC

import pytest
import vobject
from django.contrib.auth.models import Permission
from django.urls import reverse

from booking import services
from booking.calendar import initials
from booking.models import Appointment, Therapist
from booking.services import PatientDetails

pytestmark = pytest.mark.django_db

HEALTH_AND_CONTACT = [
    "p.secret@example.com",
    # The phone in the formats a feed might print it (not its area code alone: a DTSTAMP
    # such as ...T020937Z holds "209" at some times of day).
    "2095550142",
    "209-555-0142",
    "(209) 555-0142",
    "209.555.0142",
    "555-0142",
    "5550142",
    "knee surgery last week",
    "clot",
    "thinner",
    "pregnan",
    "surgery",
    "Secret",  # the patient's surname, whole
]


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic):
    return clinic


@pytest.fixture
def maria(therapist, django_user_model):
    therapist.user = django_user_model.objects.create_user(
        username="maria", password="a-long-staff-password", is_staff=True
    )
    therapist.save()
    return therapist


@pytest.fixture
def visit(service, maria, at):
    """Maria's 10:00 visit, its patient's every health answer a yes, with contact details."""
    patient = PatientDetails(
        name="Pat Quincy Secret",
        email="p.secret@example.com",
        phone="+12095550142",
        notes="knee surgery last week",
        intake={
            "intake_clot_signs": True,
            "intake_surgery_or_immobility": True,
            "intake_blood_thinners": True,
            "intake_pregnant": True,
        },
    )
    return services.book_appointment(
        service=service, therapist=maria, start=at(10), patient=patient
    )


def feed_path(therapist):
    return reverse("booking:therapist_feed", args=[therapist.calendar_token])


def events(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = vobject.readOne(response.content.decode())
    return calendar, list(getattr(calendar, "vevent_list", []))


def test_the_feed_lists_the_therapists_visits_with_the_patients_initials(client, maria, visit, at):
    services.reset_calendar_feed(therapist=maria)

    calendar, (event,) = events(client.get(feed_path(maria)))

    assert event.summary.value == "60-minute massage · P.S."
    assert event.dtstart.value == at(10).astimezone(UTC)
    assert event.dtend.value == at(11).astimezone(UTC)
    assert event.status.value == "CONFIRMED"
    assert calendar.method.value == "PUBLISH"
    assert "Maria Lopez" in calendar.contents["x-wr-calname"][0].value


def test_the_feed_carries_no_health_answers_no_contact_details_no_full_name(client, maria, visit):
    assert Appointment.objects.needing_clearance().filter(pk=visit.pk).exists()
    services.reset_calendar_feed(therapist=maria)
    body = client.get(feed_path(maria)).content.decode()
    # vobject unfolds long lines: search the text an app shows, not just the raw bytes.
    shown = vobject.readOne(body).serialize() + body
    for secret in HEALTH_AND_CONTACT:
        assert secret.lower() not in shown.lower(), secret


def test_another_therapists_visits_are_never_in_the_feed(
    client, service, maria, visit, make_therapist, at
):
    other = make_therapist("Ana Ruiz")
    services.book_appointment(
        service=service,
        therapist=other,
        start=at(14),
        patient=PatientDetails(name="Olga Other", email="o@example.com", phone="+12095550199"),
    )
    services.reset_calendar_feed(therapist=maria)
    services.reset_calendar_feed(therapist=other)

    _, mine = events(client.get(feed_path(maria)))
    _, theirs = events(client.get(feed_path(other)))

    assert [e.summary.value for e in mine] == ["60-minute massage · P.S."]
    assert [e.summary.value for e in theirs] == ["60-minute massage · O.O."]


def test_a_cancelled_visit_stays_in_the_feed_marked_cancelled(client, maria, visit):
    services.cancel_appointment(appointment=visit)
    services.reset_calendar_feed(therapist=maria)

    _, (event,) = events(client.get(feed_path(maria)))

    assert event.status.value == "CANCELLED"
    assert event.summary.value.startswith("Cancelled:")
    assert int(event.sequence.value) == Appointment.objects.get(pk=visit.pk).sequence >= 1


def test_the_feed_is_never_stored_by_a_cache_nor_indexed(client, maria, visit):
    services.reset_calendar_feed(therapist=maria)

    first = client.get(feed_path(maria))
    again = client.get(feed_path(maria))

    for response in (first, again):
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
        assert "noindex" in response["X-Robots-Tag"]
    assert "Set-Cookie" not in first.headers


def test_a_visit_booked_after_a_fetch_is_in_the_next_one(client, service, maria, visit, at):
    services.reset_calendar_feed(therapist=maria)
    assert len(events(client.get(feed_path(maria)))[1]) == 1

    services.book_appointment(
        service=service,
        therapist=maria,
        start=at(14),
        patient=PatientDetails(name="Nia Next", email="n@example.com", phone="+12095550198"),
    )

    _, found = events(client.get(feed_path(maria)))
    assert sorted(e.summary.value for e in found) == [
        "60-minute massage · N.N.",
        "60-minute massage · P.S.",
    ]


def test_the_therapist_page_leads_its_owner_and_superusers_to_the_feed(
    client, maria, staff_user, django_user_model
):
    change = f"/admin/booking/therapist/{maria.pk}/change/"
    feed_page = f"/admin/booking/therapist/{maria.pk}/calendar-feed/"
    client.force_login(staff_user)
    assert feed_page in client.get(change).content.decode()
    editor = django_user_model.objects.create_user(
        username="editor", password="a-long-staff-password", is_staff=True
    )
    editor.user_permissions.add(*Permission.objects.filter(codename="change_therapist"))
    client.force_login(editor)
    page = client.get(change)
    assert page.status_code == 200 and feed_page not in page.content.decode()


def test_resetting_the_link_makes_the_old_url_a_404(client, maria, visit):
    services.reset_calendar_feed(therapist=maria)
    old = feed_path(maria)
    assert client.get(old).status_code == 200

    services.reset_calendar_feed(therapist=maria)

    assert client.get(old).status_code == 404
    assert client.get(feed_path(maria)).status_code == 200


def test_a_therapist_who_leaves_loses_the_feed(client, maria, visit, django_user_model):
    services.reset_calendar_feed(therapist=maria)
    path = feed_path(maria)
    assert client.get(path).status_code == 200

    Therapist.objects.filter(pk=maria.pk).update(is_active=False)
    assert client.get(path).status_code == 404
    Therapist.objects.filter(pk=maria.pk).update(is_active=True)
    assert client.get(path).status_code == 200

    django_user_model.objects.filter(pk=maria.user_id).update(is_active=False)
    assert client.get(path).status_code == 404
    django_user_model.objects.filter(pk=maria.user_id).update(is_active=True)

    maria.user.delete()  # the login deleted: the therapist row stays, unlinked
    maria.refresh_from_db()
    assert maria.user is None and maria.calendar_token is None
    assert client.get(path).status_code == 404


def test_unlinking_the_login_in_the_admin_forgets_the_link(
    client, maria, visit, staff_user, django_user_model
):
    services.reset_calendar_feed(therapist=maria)
    old = feed_path(maria)
    client.force_login(staff_user)
    change = f"/admin/booking/therapist/{maria.pk}/change/"
    form = {
        "name": maria.name,
        "slug": maria.slug,
        "services": [s.pk for s in maria.services.all()],
        "is_active": "on",
        "display_order": 0,
        "user": "",
        **{
            f"{prefix}-{key}": value
            for prefix in ("working_hours", "time_off")
            for key, value in {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0}.items()
        },
    }
    response = client.post(change, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    maria.refresh_from_db()
    assert maria.user is None and maria.calendar_token is None
    assert client.get(old).status_code == 404

    # Linked again (the same login or another): the old link stays dead; they make a new one.
    maria.user = django_user_model.objects.get(username="maria")
    maria.save()
    assert client.get(old).status_code == 404
    page = f"/admin/booking/therapist/{maria.pk}/calendar-feed/"
    assert "No link yet" in client.get(page).content.decode()
    client.post(page)
    maria.refresh_from_db()
    assert feed_path(maria) != old and client.get(feed_path(maria)).status_code == 200


def test_a_therapist_with_no_link_has_no_feed(client, maria, visit):
    assert maria.calendar_token is None
    assert client.get(reverse("booking:therapist_feed", args=["None"])).status_code == 404


@pytest.mark.parametrize(
    "token",
    [
        "x",
        "A" * 43,
        "A" * 44,
        "A" * 5000,
        "%00" * 43,
        "é" * 43,
        "'; DROP TABLE booking_therapist; --",
        "..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_hostile_or_guessed_tokens_are_a_404(client, maria, visit, token):
    services.reset_calendar_feed(therapist=maria)
    response = client.get(f"/book/therapist-calendar/{token}/visits.ics")
    assert response.status_code == 404
    assert b"BEGIN:VCALENDAR" not in response.content


def test_initials_take_the_first_and_last_words():
    assert initials("Pat Quincy Secret") == "P.S."
    assert initials("  maría  ") == "M."
    assert initials("Jean-Luc O'Neil") == "J.O."
    assert initials("") == "?"
    assert initials("- -") == "?"


# --- the link on the therapist's staff pages ------------------------------------------------
MY_FEED = "/admin/booking/therapist/calendar-feed/"


def test_a_therapist_makes_and_resets_their_link_on_their_own_page(client, maria, visit):
    client.force_login(maria.user)
    assert "Your calendar" in client.get("/admin/").content.decode()
    page = client.get(MY_FEED)
    assert page.status_code == 200 and "No link yet" in page.content.decode()

    assert client.post(MY_FEED).status_code == 302
    maria.refresh_from_db()
    first = feed_path(maria)
    page = client.get(MY_FEED).content.decode()
    assert first in page and "The old one no longer works" not in page
    assert "no-store" in client.get(MY_FEED)["Cache-Control"]

    client.post(MY_FEED)
    maria.refresh_from_db()
    page = client.get(MY_FEED).content.decode()
    assert feed_path(maria) in page and first not in page
    assert "The old one no longer works" in page
    assert client.get(first).status_code == 404


def test_only_the_therapist_or_a_superuser_sees_the_link(
    client, maria, visit, make_therapist, staff_user, django_user_model
):
    services.reset_calendar_feed(therapist=maria)
    other = make_therapist("Ana Ruiz")
    other.user = django_user_model.objects.create_user(
        username="ana", password="a-long-staff-password", is_staff=True
    )
    other.save()
    maria_page = f"/admin/booking/therapist/{maria.pk}/calendar-feed/"

    client.force_login(other.user)
    assert client.get(maria_page).status_code == 404
    assert client.post(maria_page).status_code == 404
    assert feed_path(maria) not in client.get(MY_FEED).content.decode()
    assert Therapist.objects.get(pk=maria.pk).calendar_token == maria.calendar_token

    plain_staff = django_user_model.objects.create_user(
        username="front-desk", password="a-long-staff-password", is_staff=True
    )
    client.force_login(plain_staff)
    assert client.get(MY_FEED).status_code == 404
    assert client.get(maria_page).status_code == 404
    assert "Your calendar" not in client.get("/admin/").content.decode()

    client.force_login(maria.user)
    assert feed_path(maria) in client.get(maria_page).content.decode()

    client.force_login(staff_user)  # a superuser: can see and reset anyone's (a lost phone)
    assert feed_path(maria) in client.get(maria_page).content.decode()
    client.post(maria_page)
    assert Therapist.objects.get(pk=maria.pk).calendar_token != maria.calendar_token


def test_signed_out_visitors_are_sent_to_the_login(client, maria):
    response = client.get(MY_FEED)
    assert response.status_code == 302 and "/login/" in response["Location"]
