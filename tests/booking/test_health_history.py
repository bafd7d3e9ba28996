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
from django.utils import timezone

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
    # Signed thirteen months before the visit: a year and a day would be exactly twelve
    # months when the year holds a 29 February (make test-dates found it).
    with time_machine.travel(booked.starts_at - timedelta(days=396)):
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


# --- a history signed before the address was proven is flagged to staff -------------------------
UNCONFIRMED = "History unconfirmed"


def staff_pages(client, appointment):
    """The staff schedule of the visit's day, the patient's admin page and the health-history
    list's unconfirmed filter, as a logged-in staff member sees them."""
    appointment.refresh_from_db()
    day = timezone.localtime(appointment.starts_at).date()
    return {
        "schedule": client.get(f"/admin/booking/appointment/schedule/?date={day}"),
        "patient": client.get(f"/admin/clinic/patient/{appointment.patient_id}/change/"),
        "histories": client.get("/admin/booking/healthhistory/?unconfirmed=yes"),
    }


def test_a_strangers_history_that_joins_the_owners_record_is_flagged_to_staff(
    client, staff_user, service, therapist, at, caplog
):
    staff = client.__class__()
    staff.force_login(staff_user)
    # Mallory books with Pat's address and signs from the confirmation page's link.
    stranger = client.__class__()
    mallory = book(service, therapist, at(10), name="Mallory")
    with caplog.at_level(logging.DEBUG):
        assert sign(stranger, page_link(stranger, mallory)).status_code == 303
    # On the booking's own unproven record it misleads nobody: no flag yet.
    assert UNCONFIRMED not in staff_pages(staff, mallory)["schedule"].content.decode()

    # Pat follows the emailed link: the record joins Pat's, Mallory's answers become Pat's newest.
    with caplog.at_level(logging.DEBUG):
        form = client.get(emailed_link(mallory))
    assert form.status_code == 200 and "Zebrafish syndrome since 2019" in form.content.decode()
    mallory.refresh_from_db()
    assert mallory.patient.verified_at is not None

    pages = staff_pages(staff, mallory)
    assert all(page.status_code == 200 for page in pages.values())
    schedule = pages["schedule"].content.decode()
    assert "History unconfirmed: signed before the email was confirmed" in _text(schedule)
    assert "check it with the patient" in _text(schedule)
    patient_page = _text(pages["patient"].content.decode())
    assert UNCONFIRMED in patient_page
    assert "Version 1 (latest)" in patient_page
    assert "Signed before the email was confirmed" in patient_page
    assert UNCONFIRMED in pages["histories"].content.decode()
    assert "Pat Q. Example" in pages["histories"].content.decode()
    # The flag names no answer, nor does any email, log line or staff URL.
    assert not any(word in schedule.lower() for word in TELLTALES)
    assert not any(word in pages["histories"].content.decode().lower() for word in TELLTALES)
    for email in OutgoingEmail.objects.all():
        text = f"{email.subject} {email.body_text} {email.body_html}".lower()
        assert not any(word in text for word in TELLTALES)
        assert "unconfirmed" not in text
    assert not any(word in caplog.text.lower() for word in TELLTALES)


def test_a_history_signed_from_the_emailed_link_is_not_flagged(client, staff_user, booked):
    assert sign(client, emailed_link(booked)).status_code == 303
    assert HealthHistory.objects.get().signed_with_proven_address
    client.force_login(staff_user)
    pages = staff_pages(client, booked)
    for name, page in pages.items():
        assert page.status_code == 200 and UNCONFIRMED not in page.content.decode(), name
    assert "Version 1 (latest)" in pages["patient"].content.decode()
    assert "Signed before the email was confirmed" not in pages["patient"].content.decode()


def test_a_history_signed_after_the_address_was_proven_is_not_flagged(
    client, staff_user, service, therapist, at
):
    # Mallory signs from the page; Pat proves the address, then signs the form again.
    stranger = client.__class__()
    mallory = book(service, therapist, at(10), name="Mallory")
    assert sign(stranger, page_link(stranger, mallory)).status_code == 303
    link = emailed_link(mallory)
    assert sign(client, link, conditions="None", signed_name="Pat Example").status_code == 303

    histories = list(HealthHistory.objects.order_by("signed_at", "pk"))
    assert [h.signed_with_proven_address for h in histories] == [False, True]
    staff = client.__class__()
    staff.force_login(staff_user)
    pages = staff_pages(staff, mallory)
    assert UNCONFIRMED not in pages["schedule"].content.decode()
    patient_page = _text(pages["patient"].content.decode())
    assert UNCONFIRMED not in patient_page
    assert "Version 2 (latest)" in patient_page
    # The first version stays marked as what it was.
    assert patient_page.count("Signed before the email was confirmed") == 1
    assert UNCONFIRMED in pages["histories"].content.decode()  # version 1 is still listed
    assert "Pat Example" not in pages["histories"].content.decode()


def test_a_page_link_form_sent_after_the_address_was_proven_signs_nothing(booked):
    """The page's link opened the form on an unproven record; the address was proven (or the
    record merged away) before the form was sent: nothing is signed on the owner's record."""
    from booking.health import ProofNeeded

    answers = {
        **{k: FILLED[k] for k in KEYS if k in FILLED and not k.startswith("intake_")},
        **dict.fromkeys(Appointment.INTAKE_FIELDS, False),
    }
    record = booked.patient
    Patient.objects.filter(pk=record.pk).update(verified_at=booked.starts_at)
    with pytest.raises(ProofNeeded):
        sign_health_history(
            patient=record,
            answers=answers,
            signed_name="Mallory",
            consent_version=1,
            language="en",
            emailed=False,
        )
    assert not HealthHistory.objects.exists()


def test_histories_signed_before_this_was_recorded_are_judged_from_their_record(
    client, service, therapist, at
):
    """Migration 0015: unverified record: not proven; signed before the record was
    confirmed: not proven; signed at or after: proven."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "booking.migrations.0016_health_history_signed_with_proven_address"
    )
    stranger = client.__class__()
    mallory = book(service, therapist, at(10), name="Mallory")
    sign(stranger, page_link(stranger, mallory))  # before Pat proves the address
    sign(client, emailed_link(mallory), conditions="None")  # after
    unproven = book(service, therapist, at(14), email="sam@example.com", name="Sam")
    sign(stranger, page_link(stranger, unproven))  # on a record never proven
    HealthHistory.objects.update(signed_with_proven_address=False)

    migration.judge_existing(apps, None)

    judged = HealthHistory.objects.order_by("pk").values_list(
        "conditions", "signed_with_proven_address"
    )
    assert list(judged) == [
        (FILLED["conditions"], False),
        ("None", True),
        (FILLED["conditions"], False),
    ]


def _text(html):
    """The page's text as read (tags dropped, spaces squeezed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
