"""The health history and consent: the signed, expiring link from the confirmation page and
email, who may open whose record, signing (locked; a change is a new version), today's
advice and flag, renewal after 12 months, and privacy (health data never in an email, a log
line, a URL, a cookie or a cache key)."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.core.exceptions import ValidationError

from booking.health import (
    CURRENT,
    EXPIRED,
    MISSING,
    history_state,
    publish_consent_text,
    sign_health_history,
)
from booking.models import Appointment, ConsentText, HealthHistory
from booking.services import PatientDetails, book_appointment
from clinic.models import OutgoingEmail, Patient
from tests.booking.test_intake import _readable, cache_keys

pytestmark = pytest.mark.django_db

FILLED = {
    "conditions": "Zebrafish syndrome since 2019",
    "medications": "Quixotamol 20 mg",
    "areas_to_avoid": "Left shoulder blade",
    "pressure": "medium",
    "emergency_name": "Robin Example",
    "emergency_phone": "(209) 555-0199",
    "intake_clot_signs": "no",
    "intake_surgery_or_immobility": "no",
    "intake_blood_thinners": "no",
    "intake_pregnant": "no",
    "signed_name": "Pat Q. Example",
    "agree": "on",
}
# What a patient writes in the form: none of it may leave the database but to staff and them.
TELLTALES = ["zebrafish", "quixotamol", "shoulder blade", "robin example", "5550199"]


@pytest.fixture(autouse=True)
def _rules(booking_rules, clinic):
    return booking_rules


def book(service, therapist, start, email="pat@example.com", name="Pat Example", language=None):
    return book_appointment(
        service=service,
        therapist=therapist,
        start=start,
        patient=PatientDetails(name=name, email=email, phone="+12095550142"),
        language=language,
    )


def emailed_link(appointment):
    """The health-history link in the patient's confirmation email (path only)."""
    for email in OutgoingEmail.objects.filter(body_text__contains="/book/health/"):
        path = _health_path(email.body_text)
        token = path.rstrip("/").rsplit("/", 1)[1]
        if signing.loads(token, salt="booking.health_history")["a"] == appointment.public_token:
            assert email.to == [appointment.patient_email]
            return path
    raise AssertionError("no confirmation email with a health-history link")


def _health_path(text):
    url = re.search(r"https?://[^/\s]+(/(?:es/)?book/health/[^\s/]+/)", text)
    return url.group(1) if url else None


def page_link(client, appointment):
    """The link on the confirmation page (proves nothing about the address)."""
    page = client.get(f"/book/appointment/{appointment.public_token}/").content.decode()
    found = re.search(r'href="(/(?:es/)?book/health/[^"/]+/)"', page)
    return found.group(1) if found else None


def sign(client, link, **changes):
    page = client.get(link).content.decode()
    version = re.search(r'name="consent_version" value="(\d+)"', page).group(1)
    data = {**FILLED, "consent_version": version, **changes}
    return client.post(link, {k: v for k, v in data.items() if v is not None})


@pytest.fixture
def booked(service, therapist, at):
    return book(service, therapist, at(10))


# --- the record a booking makes, and when it joins the address's ------------------------------
def test_a_booking_makes_its_own_record_until_the_address_is_proven(booked, service, therapist, at):
    second = book(service, therapist, at(14))
    assert booked.patient and second.patient and booked.patient != second.patient
    assert booked.patient.verified_at is None
    assert Patient.objects.count() == 2


def test_following_the_emailed_link_joins_every_booking_of_the_address_into_one_record(
    client, booked, service, therapist, at
):
    second = book(service, therapist, at(14), email="PAT@example.com")
    assert client.get(emailed_link(booked)).status_code == 200
    assert client.get(emailed_link(second)).status_code == 200
    booked.refresh_from_db()
    second.refresh_from_db()
    assert booked.patient == second.patient
    assert booked.patient.verified_at is not None
    assert Patient.objects.count() == 1


def test_a_typed_address_never_reads_or_joins_another_persons_record(
    client, booked, service, therapist, at
):
    link = emailed_link(booked)
    assert sign(client, link).status_code == 303
    pats = booked.patient.__class__.objects.verified().get()

    # Someone else books with Pat's address and opens their confirmation page's link.
    stranger = book(service, therapist, at(15), name="Mallory")
    other = client.__class__()
    form = other.get(page_link(other, stranger))
    assert form.status_code == 200
    page = form.content.decode().lower()
    assert not any(word in page for word in TELLTALES)
    assert sign(other, page_link(other, stranger), conditions="None").status_code == 303
    stranger.refresh_from_db()
    assert stranger.patient != pats
    assert pats.health_histories.count() == 1  # nothing added to Pat's record

    # Pat's own page link, once the address is proven, opens nothing: the email's does.
    refused = client.get(page_link(client, booked))
    assert refused.status_code == 403
    assert "link in the email" in refused.content.decode()
    assert "zebrafish" not in refused.content.decode().lower()


def test_the_confirmation_page_and_email_carry_the_link(client, booked):
    assert page_link(client, booked)
    assert emailed_link(booked)
    (html,) = OutgoingEmail.objects.filter(body_html__contains="/book/health/")
    assert html.to == ["pat@example.com"]


def test_a_spanish_booking_links_the_spanish_form(client, service, therapist, at):
    appointment = book(service, therapist, at(10), language="es")
    link = emailed_link(appointment)
    assert link.startswith("/es/book/health/")
    page = client.get(link).content.decode()
    assert "Su historial de salud y consentimiento" in page
    assert "Entiendo que la masoterapia no sustituye" in page
    assert sign(client, link).status_code == 303
    assert HealthHistory.objects.get().language == "es"


# --- signing -------------------------------------------------------------------------------------
def test_signing_keeps_the_consent_version_the_time_and_the_name_as_typed(client, booked):
    moment = datetime(2026, 12, 6, 18, 30, tzinfo=UTC)
    link = emailed_link(booked)
    with time_machine.travel(moment, tick=False):
        response = sign(client, link, signed_name="  Pat   Q. Example ")
    assert response.status_code == 303
    history = HealthHistory.objects.get()
    assert history.consent_text == ConsentText.current() and history.consent_text.version == 1
    assert history.signed_at == moment
    assert history.signed_name == "Pat Q. Example"
    assert history.conditions == FILLED["conditions"]
    assert history.pressure == "medium" and str(history.emergency_phone) == "+12095550199"
    thanks = client.get(response["Location"]).content.decode()
    assert "your health history is signed" in thanks


def test_a_signed_history_is_locked_and_a_change_is_a_new_version(client, booked):
    link = emailed_link(booked)
    sign(client, link)
    first = HealthHistory.objects.get()
    first.conditions = "rewritten"
    with pytest.raises(ValidationError):
        first.save()
    # The form opens on the last version; changing it signs a second one.
    page = client.get(link).content.decode()
    assert "Zebrafish syndrome since 2019" in page
    assert sign(client, link, medications="None now").status_code == 303
    histories = list(HealthHistory.objects.order_by("signed_at", "pk"))
    assert len(histories) == 2
    assert histories[0].medications == "Quixotamol 20 mg"  # as first signed
    assert histories[1].medications == "None now"


def test_staff_publish_a_new_consent_version_and_the_next_signature_names_it(client, booked):
    link = emailed_link(booked)
    sign(client, link)
    publish_consent_text(text="New wording: I agree to version two.", text_es="Versión dos.")
    assert "I agree to version two." in client.get(link).content.decode()
    sign(client, link)
    versions = [h.consent_text.version for h in HealthHistory.objects.order_by("pk")]
    assert versions == [1, 2]
    # A signature made while version 1 was shown records version 1 (what was read).
    assert (
        sign_health_history(
            patient=booked.__class__.objects.get(pk=booked.pk).patient,
            answers={k: v for k, v in HealthHistory.objects.first().__dict__.items() if k in KEYS},
            signed_name="Pat",
            consent_version=1,
            language="en",
        ).consent_text.version
        == 1
    )


KEYS = {
    "conditions",
    "medications",
    "areas_to_avoid",
    "pressure",
    "emergency_name",
    "emergency_phone",
    *Appointment.INTAKE_FIELDS,
}


def test_a_yes_gets_todays_advice_and_flags_the_history(client, booked):
    response = sign(client, emailed_link(booked), intake_pregnant="yes")
    page = client.get(response["Location"]).content.decode()
    assert "please speak to your doctor before your visit" in page
    assert HealthHistory.objects.get().needs_clearance


# --- hostile input: 400 with a message and everything typed kept; never a 500 --------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"agree": None}, "Tick the box to agree to the consent."),
        ({"signed_name": "   "}, "Type your full name to sign."),
        ({"signed_name": "x" * 500}, "Ensure this value has at most 120 characters"),
        ({"conditions": "Bad\x07byte"}, "Remove the unusual characters from this answer."),
        ({"medications": "Bad\x00byte"}, "Null characters are not allowed."),
        ({"emergency_phone": "not a phone"}, "Enter a valid phone number"),
        ({"pressure": "<script>"}, "Choose the pressure you prefer."),
        ({"intake_pregnant": "maybe"}, "Select a valid choice"),
        ({"consent_version": "99999"}, "The consent text has changed."),
        ({"consent_version": "1; DROP TABLE"}, "This form arrived damaged."),
        ({"emergency_name": None}, "Give someone we can call in an emergency."),
    ],
)
def test_a_bad_answer_is_refused_with_a_message_and_keeps_what_was_typed(
    client, booked, changes, message
):
    link = emailed_link(booked)
    response = sign(client, link, **changes)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    for field in ("medications", "areas_to_avoid", "conditions"):
        if field not in changes:  # everything else typed is kept
            assert FILLED[field] in page, field
    assert not HealthHistory.objects.exists()


@pytest.mark.parametrize(
    "token", ["x", "a" * 400, "eyJhIjoiIn0:1x:bad", "%00", "../../admin", "..%2F"]
)
def test_a_wrong_or_tampered_link_is_a_plain_not_found(client, booked, token):
    response = client.get(f"/book/health/{token}/")
    assert response.status_code == 404
    response = client.post(f"/book/health/{token}/", FILLED)
    assert response.status_code == 404


def test_a_link_stops_working_after_30_days(client, booked):
    link = emailed_link(booked)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=31)):
        response = client.get(link)
    assert response.status_code == 404
    assert "expired" in response.content.decode()


# --- privacy: health data never in an email, a log, a URL, a cookie or a cache key --------------
def test_the_history_never_reaches_an_email_a_log_a_url_a_cookie_or_a_cache_key(
    client, booked, caplog, mailoutbox
):
    from booking.reminders import send_due_reminders

    link = emailed_link(booked)
    with caplog.at_level(logging.DEBUG):
        response = sign(client, link, intake_blood_thinners="yes")
        thanks = client.get(response["Location"])
        # The reminder (with its renewal note) is written after signing.
        send_due_reminders(now=booked.starts_at - timedelta(hours=23))
    assert response.status_code == 303 and thanks.status_code == 200
    for email in OutgoingEmail.objects.all():
        text = " ".join(
            [email.subject, email.body_text, email.body_html, str(email.headers)]
            + [a["content"] for a in email.attachments]
        ).lower()
        for word in [*TELLTALES, "thinner", "anticoagul"]:
            assert word not in text, f"{word!r} in the email {email.subject!r}"
    for message in mailoutbox:
        assert not any(word in message.message().as_string().lower() for word in TELLTALES)
    logged = caplog.text.lower()
    assert not any(word in logged for word in TELLTALES)
    for address in (link, response["Location"]):
        assert not any(word in address.lower() for word in [*TELLTALES, "thinner", "zebra"])
    assert not any(word in str(key).lower() for key in cache_keys() for word in TELLTALES)
    for name, morsel in client.cookies.items():
        text = _readable(morsel.value)
        assert not any(word in text for word in TELLTALES), name
    assert response.get("Cache-Control", "").find("private") >= 0


# --- renewal after 12 months ---------------------------------------------------------------------
TZ_DAY = datetime(2027, 3, 14, 10, tzinfo=UTC)  # the spring clock change in the clinic's zone


@pytest.mark.parametrize(
    ("signed", "visit", "state"),
    [
        (None, TZ_DAY, MISSING),
        (TZ_DAY - timedelta(days=364), TZ_DAY, CURRENT),
        (TZ_DAY.replace(year=2026), TZ_DAY, EXPIRED),  # exactly a year: renew
        (TZ_DAY.replace(year=2026) + timedelta(minutes=1), TZ_DAY, CURRENT),
        # Signed on a leap day: current through Feb 28, renewed from Mar 1.
        (datetime(2024, 2, 29, 9, tzinfo=UTC), datetime(2025, 3, 1, 9, tzinfo=UTC), EXPIRED),
        (datetime(2024, 2, 29, 9, tzinfo=UTC), datetime(2025, 2, 28, 9, tzinfo=UTC), CURRENT),
    ],
)
def test_a_history_is_current_for_twelve_months_then_expired(signed, visit, state):
    assert history_state(signed, visit) == state


def reminder_for(appointment):
    from booking.reminders import send_due_reminders

    assert send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 1
    return OutgoingEmail.objects.get(idempotency_key__startswith="booking:reminder:")


def test_the_reminder_links_the_form_while_the_history_is_missing(booked):
    email = reminder_for(booked)
    assert _health_path(email.body_text)
    assert "health history" in email.body_text


def test_the_reminder_says_nothing_of_the_history_while_it_is_current(client, booked):
    sign(client, emailed_link(booked))
    email = reminder_for(booked)
    assert "health history" not in email.body_text and not _health_path(email.body_text)


def test_the_reminder_asks_to_renew_a_history_over_a_year_old(client, booked):
    with time_machine.travel(booked.starts_at - timedelta(days=366)):
        link = emailed_link(booked)
        sign(client, link)
    email = reminder_for(booked)
    assert "more than a year old" in email.body_text
    path = _health_path(email.body_text)
    page = client.get(path).content.decode()
    assert "It needs renewing every year" in page
    assert sign(client, path).status_code == 303
    assert HealthHistory.objects.count() == 2


def test_the_schedule_shows_history_missing_then_nothing_then_expired(
    client, staff_user, booked, service, therapist, at
):
    client.force_login(staff_user)
    url = f"/admin/booking/appointment/schedule/?date={booked.starts_at.date()}"
    assert "History missing" in client.get(url).content.decode()
    patient_client = client.__class__()
    sign(patient_client, emailed_link(booked))
    page = client.get(url).content.decode()
    assert "History missing" not in page and "History expired" not in page
    HealthHistory.objects.update(signed_at=booked.starts_at - timedelta(days=400))
    assert "History expired" in client.get(url).content.decode()
    assert "Check health history" not in client.get(url).content.decode()
    # A "yes" in the newest version flags the visit for the therapist.
    assert sign(patient_client, emailed_link(booked), intake_clot_signs="yes").status_code == 303
    page = client.get(url).content.decode()
    assert "Check health history" in page and "History expired" not in page


def test_the_same_form_sent_twice_signs_one_version(client, booked):
    link = emailed_link(booked)
    page = client.get(link).content.decode()
    version = re.search(r'name="consent_version" value="(\d+)"', page).group(1)
    data = {**FILLED, "consent_version": version}
    assert client.post(link, data).status_code == 303
    assert client.post(link, data).status_code == 303  # a double click or a reload
    assert HealthHistory.objects.count() == 1
    assert client.post(link, {**data, "areas_to_avoid": ""}).status_code == 303
    assert HealthHistory.objects.count() == 2  # a change is a new version
