"""The patient's manage link: see, move or cancel the booking without calling."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from booking import links, services
from booking.models import Appointment
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(appointment):
    return links.manage_token(appointment)


def manage(token, *rest):
    return reverse("booking:manage", args=[token]) + "".join(rest)


def move_url(token, start):
    local = timezone.localtime(start)
    return reverse("booking:reschedule_confirm", args=[token, local.date(), local.time()])


def test_the_confirmation_email_carries_a_working_manage_link(client, appointment):
    email = OutgoingEmail.objects.get(to=["pat@example.com"])
    link = next(line for line in email.body_text.splitlines() if "/book/manage/" in line)
    page = client.get(link.strip().removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200
    assert "Your appointment" in page.content.decode()
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "x" + token,
        lambda token: signing.dumps("not-a-real-token", salt=links.MANAGE_SALT),
        lambda token: signing.dumps(token.split(":")[0], salt="another.salt"),
        lambda token: "a" * 500,
    ],
    ids=["tampered signature", "garbage", "unknown appointment", "other salt", "too long"],
)
def test_a_wrong_or_tampered_token_is_a_404_that_reveals_nothing(client, token, mangle):
    response = client.get(manage(mangle(token)))
    assert response.status_code == 404
    assert "Pat" not in response.content.decode()


def test_a_stale_link_for_an_appointment_long_past_is_a_404(client, appointment, token):
    with time_machine.travel(appointment.ends_at + timedelta(days=31)):
        assert client.get(manage(token)).status_code == 404


def test_cancelling_frees_the_slot_and_tells_patient_and_clinic(
    client, appointment, token, service, therapist, at, patient
):
    response = client.post(reverse("booking:cancel", args=[token]), {"reason": "Flu"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "cancelled" and appointment.cancellation_reason == "Flu"
    assert appointment.sequence == 1
    notice = OutgoingEmail.objects.get(to=["pat@example.com"], subject__startswith="Cancelled:")
    event = Calendar.from_ical(notice.attachments[0]["content"]).walk("VEVENT")[0]
    assert str(event["status"]) == "CANCELLED" and event["sequence"] == 1
    assert OutgoingEmail.objects.filter(subject__startswith="Cancelled: Pat Example").exists()
    page = client.get(manage(token)).content.decode()
    assert "This appointment is cancelled" in page
    # The time is free again at once.
    again = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient
    )
    assert again.starts_at == at(10)


def test_a_double_clicked_cancel_cancels_once(client, appointment, token):
    url = reverse("booking:cancel", args=[token])
    assert client.post(url, {"reason": ""}).status_code == 302
    assert client.post(url, {"reason": ""}).status_code == 302
    assert (
        OutgoingEmail.objects.filter(subject__startswith="Cancelled").count() == 2
    )  # patient + clinic, once


def test_moving_to_a_free_time_keeps_the_uid_and_raises_the_sequence(
    client, appointment, token, at
):
    new = at(14)
    page = client.get(move_url(token, new))
    assert page.status_code == 200 and "Move your appointment?" in page.content.decode()
    response = client.post(move_url(token, new))
    assert response.status_code == 302 and response["Location"] == manage(token)
    appointment.refresh_from_db()
    assert (appointment.starts_at, appointment.sequence) == (new, 1)
    moved = OutgoingEmail.objects.get(subject__startswith="Moved to")
    event = Calendar.from_ical(moved.attachments[0]["content"]).walk("VEVENT")[0]
    confirmation = OutgoingEmail.objects.get(subject__startswith="Booked")
    first = Calendar.from_ical(confirmation.attachments[0]["content"]).walk("VEVENT")[0]
    assert str(event["uid"]) == str(first["uid"])
    assert event["sequence"] == 1 and event.decoded("dtstart") == new
    assert OutgoingEmail.objects.filter(subject__startswith="Moved: Pat Example").exists()
    # A double-clicked move changes nothing more.
    assert client.post(move_url(token, new)).status_code == 302
    appointment.refresh_from_db()
    assert appointment.sequence == 1


def test_moving_within_its_own_time_works(client, appointment, token, at, booking_rules):
    response = client.post(move_url(token, at(10, 30)))
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.starts_at == at(10, 30)


def test_moving_to_a_taken_or_past_time_is_refused_and_changes_nothing(
    client, appointment, token, at, service, make_therapist, patient
):
    other = services.book_appointment(
        service=service, therapist=appointment.therapist, start=at(14), patient=patient
    )
    assert client.post(move_url(token, at(14, 30))).status_code == 409
    past = timezone.now() - timedelta(days=1)
    response = client.post(move_url(token, past))
    assert response.status_code in (400, 409)
    appointment.refresh_from_db()
    assert appointment.starts_at == at(10) and appointment.sequence == 0
    assert other.starts_at == at(14)


def test_the_reschedule_calendar_offers_the_same_therapists_free_days(
    client, appointment, token, next_monday, at
):
    page = client.get(reverse("booking:reschedule", args=[token]) + f"?month={next_monday:%Y-%m}")
    assert page.status_code == 200
    assert reverse("booking:reschedule_time", args=[token, next_monday]) in page.content.decode()
    times = client.get(
        reverse("booking:reschedule_time", args=[token, next_monday])
    ).content.decode()
    assert move_url(token, at(10, 30)) in times  # its own time counts as free to overlap...
    assert move_url(token, appointment.starts_at) not in times  # ...but is no time to move to


def test_the_visits_own_time_is_not_a_move(client, appointment, token):
    page = client.get(move_url(token, appointment.starts_at))
    assert page.status_code == 409
    assert "already the time of your appointment" in page.content.decode()
    assert client.post(move_url(token, appointment.starts_at)).status_code == 302
    appointment.refresh_from_db()
    assert appointment.sequence == 0
    assert not OutgoingEmail.objects.filter(subject__startswith="Moved to").exists()


def test_a_cancelled_visits_move_pages_lead_back_to_it(client, appointment, token, at):
    services.cancel_appointment(appointment=appointment, reason="")
    for url in [
        reverse("booking:reschedule", args=[token]),
        reverse("booking:reschedule_time", args=[token, at(14).date()]),
        move_url(token, at(14)),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == manage(token), url
    assert client.post(move_url(token, at(14))).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "cancelled" and appointment.starts_at == at(10)


def test_moving_to_a_time_inside_the_cut_off_says_it_cannot_be_changed_again(
    client, booking_rules, clinic, therapist, service, patient
):
    from datetime import datetime

    zone = timezone.get_default_timezone()
    booking_rules.cancel_cutoff_hours = 48
    booking_rules.save()
    service.price = 90
    service.save()
    with time_machine.travel(datetime(2027, 3, 1, 8, 0, tzinfo=zone), tick=False):  # a Monday
        visit = services.book_appointment(
            service=service,
            therapist=therapist,
            start=datetime(2027, 3, 5, 10, 0, tzinfo=zone),  # Friday: changeable online
            patient=patient,
        )
        token = links.manage_token(visit)
        soon = client.get(move_url(token, datetime(2027, 3, 2, 14, 0, tzinfo=zone)))
        later = client.get(move_url(token, datetime(2027, 3, 4, 14, 0, tzinfo=zone)))
    assert soon.status_code == 200 and later.status_code == 200
    assert "60 minutes" in later.content.decode()  # what is being moved, and its price
    assert "$90" in later.content.decode()
    assert "cannot be moved or cancelled online again" in soon.content.decode()
    assert "cannot be moved or cancelled online again" not in later.content.decode()


def test_after_the_cutoff_the_page_shows_the_phone_and_a_late_post_is_refused(
    client, appointment, token
):
    with time_machine.travel(appointment.starts_at - timedelta(hours=23)):
        page = client.get(manage(token)).content.decode()
        assert "too late to change this appointment online" in page
        assert "1-209-915-2296" in page
        assert "Cancel this appointment" not in page
        late_cancel = client.post(reverse("booking:cancel", args=[token]), {"reason": ""})
        late_move = client.post(move_url(token, appointment.starts_at + timedelta(days=1)))
        assert late_cancel.status_code == 409 and late_move.status_code == 409
        assert client.get(reverse("booking:reschedule", args=[token])).status_code == 409
    appointment.refresh_from_db()
    assert appointment.status == "confirmed" and appointment.sequence == 0


def test_a_cancel_reason_that_is_too_long_is_sent_back(client, appointment, token):
    response = client.post(reverse("booking:cancel", args=[token]), {"reason": "x" * 301})
    assert response.status_code == 400
    assert "at most 300 characters" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "confirmed"


def test_staff_may_cancel_after_the_cutoff(appointment):
    with time_machine.travel(appointment.starts_at - timedelta(hours=1)):
        assert services.cancel_appointment(
            appointment=appointment, reason="Therapist ill", by_staff=True
        )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    notice = OutgoingEmail.objects.get(to=["pat@example.com"], subject__startswith="Cancelled")
    assert "we had to cancel" in notice.body_text and "Therapist ill" in notice.body_text


def test_opening_the_move_page_for_a_taken_time_says_it_is_not_free(
    client, appointment, token, at, service, patient
):
    services.book_appointment(
        service=service, therapist=appointment.therapist, start=at(14), patient=patient
    )
    response = client.get(move_url(token, at(14)))
    assert response.status_code == 409
    assert "is not free" in response.content.decode()


# --- cancelling asks first (issue 16, part 6) -------------------------------------------------
def test_cancelling_takes_a_second_step_that_changes_nothing_until_confirmed(
    client, appointment, token
):
    page = client.get(manage(token)).content.decode()
    cancel_url = reverse("booking:cancel", args=[token])
    assert f'href="{cancel_url}"' in page
    assert f'action="{cancel_url}"' not in page  # no one-tap cancel from the manage page

    ask = client.get(cancel_url)
    assert ask.status_code == 200
    assert "no-store" in ask["Cache-Control"]
    question = ask.content.decode()
    assert "Cancel your appointment?" in question
    assert f'action="{cancel_url}"' in question and 'name="reason"' in question
    assert f'href="{manage(token)}"' in question  # "No, keep it"
    assert "Maria Lopez" in question
    appointment.refresh_from_db()
    assert appointment.status == "confirmed"
    assert not OutgoingEmail.objects.filter(subject__startswith="Cancelled").exists()

    assert client.post(cancel_url, {"reason": "Flu"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    # Asking again about a cancelled appointment leads back to it.
    again = client.get(cancel_url)
    assert again.status_code == 302 and again["Location"] == manage(token)


def test_the_cancel_question_after_the_cutoff_gives_the_phone(client, appointment, token):
    with time_machine.travel(appointment.starts_at - timedelta(hours=23)):
        response = client.get(reverse("booking:cancel", args=[token]))
    assert response.status_code == 409
    assert "too late to change this appointment online" in response.content.decode()


def test_a_too_long_reason_keeps_the_question_and_what_was_typed(client, appointment, token):
    response = client.post(reverse("booking:cancel", args=[token]), {"reason": "y" * 301})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Cancel your appointment?" in page and "y" * 301 in page


def test_the_move_question_labels_both_times_with_their_zone(
    client, booking_rules, clinic, therapist, service, patient
):
    from datetime import datetime

    tz = timezone.get_default_timezone()
    # Booked for Monday 2 March 2026 (PST), moved to Monday 9 March (PDT: clocks go forward
    # on the 8th).
    with time_machine.travel(datetime(2026, 2, 20, 9, tzinfo=tz), tick=False):
        booked = services.book_appointment(
            service=service,
            therapist=therapist,
            start=datetime(2026, 3, 2, 10, tzinfo=tz),
            patient=patient,
        )
        token = links.manage_token(booked)
        page = client.get(move_url(token, datetime(2026, 3, 9, 10, tzinfo=tz)))
    assert page.status_code == 200
    text = page.content.decode()
    old = re.search(r"<del>([^<]+)</del>\s*<span[^>]*>\((\w+)\)</span>", text)
    new = re.search(r"<strong>([^<]+)</strong>\s*<span[^>]*>\((\w+)\)</span>", text)
    assert old and "March 2" in old.group(1) and old.group(2) == "PST"
    assert new and "March 9" in new.group(1) and new.group(2) == "PDT"


def test_the_soonest_free_time_on_the_move_page_opens_its_move_question(client, appointment, token):
    page = client.get(reverse("booking:reschedule", args=[token])).content.decode()
    link = re.search(r'Soonest free time: <a href="([^"]+)">', page)
    assert link, "no soonest free time"
    assert re.fullmatch(re.escape(manage(token)) + r"move/\d{4}-\d{2}-\d{2}/\d{4}/", link.group(1))
    question = client.get(link.group(1))
    assert question.status_code == 200
    assert "Move your appointment?" in question.content.decode()
