"""The intake questions: a "yes" gets plain advice and flags the visit; the answers are health
data, so they reach staff only and never an email, a log, a URL or a cache key."""

import logging

import pytest
from django.core.cache import cache

from booking.models import Appointment
from clinic.models import OutgoingEmail
from tests.booking.test_views import details_url, form_data

pytestmark = pytest.mark.django_db

ALL_YES = {
    "intake_clot_signs": "yes",
    "intake_surgery_or_immobility": "yes",
    "intake_blood_thinners": "yes",
    "intake_pregnant": "yes",
}
# Words from the questions and the fields: none may leave the database but to staff.
TELLTALES = ["clot", "thinner", "anticoagul", "pregnan", "surgery", "immobil", "intake_"]


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def cache_keys():
    backend = cache._cache if hasattr(cache, "_cache") else None
    if hasattr(backend, "get_client"):  # Django's RedisCache
        client = backend.get_client(None)
        return [key.decode() for key in client.scan_iter("*")]
    return list(backend.keys()) if backend is not None else []


def test_a_yes_books_anyway_flags_the_visit_and_advises_a_doctor(client, therapist, at):
    url = details_url(therapist, at(10))
    response = client.post(url, form_data(client, url, intake_pregnant="yes"), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "please speak to your doctor before your visit" in page
    appointment = Appointment.objects.get()
    assert appointment.needs_clearance and appointment.intake_pregnant is True
    assert appointment.intake_clot_signs is False
    assert list(Appointment.objects.needing_clearance()) == [appointment]


def test_all_no_gives_no_advice_and_no_flag(client, therapist, at):
    url = details_url(therapist, at(10))
    page = client.post(url, form_data(client, url), follow=True).content.decode()
    assert "speak to your doctor" not in page
    assert not Appointment.objects.get().needs_clearance
    assert Appointment.objects.needing_clearance().count() == 0


def test_the_answers_never_reach_an_email_a_log_a_url_or_a_cache_key(
    client, therapist, at, caplog, mailoutbox
):
    url = details_url(therapist, at(10))
    data = form_data(client, url, **ALL_YES)
    with caplog.at_level(logging.DEBUG):
        response = client.post(url, data)
        confirmation = client.get(response["Location"])
    assert response.status_code == 303
    appointment = Appointment.objects.get()
    assert appointment.needs_clearance

    emails = list(OutgoingEmail.objects.all())
    assert len(emails) == 2
    for email in emails:
        text = " ".join(
            [email.subject, email.body_text, email.body_html, str(email.headers)]
            + [a["content"] for a in email.attachments]
        ).lower()
        for word in TELLTALES:
            assert word not in text, f"{word!r} in the email {email.subject!r}"
    notice = next(e for e in emails if e.to != ["pat@example.com"])
    assert "Intake received" in notice.body_text
    for message in mailoutbox:  # as really sent
        assert not any(word in message.message().as_string().lower() for word in TELLTALES)

    logged = caplog.text.lower()
    for word in TELLTALES:
        assert word not in logged, f"{word!r} in the log"
    for address in (url, response["Location"]):
        assert not any(word in address.lower() for word in TELLTALES)
    assert not any(word in key.lower() for key in map(str, cache_keys()) for word in TELLTALES)
    # The patient's own confirmation page does not show the answers either.
    assert "thinner" not in confirmation.content.decode().lower()


# --- which questions a treatment asks (staff choose per treatment) ---------------------------
QUESTIONS = {
    "intake_clot_signs": "blood clot",
    "intake_surgery_or_immobility": "surgery",
    "intake_blood_thinners": "blood thinners",
    "intake_pregnant": "pregnant",
}


@pytest.fixture
def neck(therapist):
    """A short neck treatment whose staff ticked none of the calf and clot questions."""
    from booking.models import Service

    neck = Service.objects.create(
        name="Neck massage",
        slug="neck",
        duration_minutes=30,
        asks_clot_signs=False,
        asks_surgery_or_immobility=False,
        asks_blood_thinners=False,
        asks_pregnant=False,
    )
    therapist.services.add(neck)
    return neck


def asked(page):
    return {name for name in QUESTIONS if f'name="{name}"' in page}


def test_a_new_treatment_asks_all_four_questions_until_staff_choose(client, therapist, at):
    page = client.get(details_url(therapist, at(10))).content.decode()
    assert asked(page) == set(QUESTIONS)
    assert "A few health questions" in page


def test_a_treatment_that_asks_none_books_without_health_questions(client, therapist, neck, at):
    url = details_url(therapist, at(10), service_slug="neck")
    page = client.get(url).content.decode()
    assert asked(page) == set()
    assert "A few health questions" not in page
    # Answers sent anyway (a stale form, a hand-made POST) are not kept: nothing was asked.
    response = client.post(url, form_data(client, url, **ALL_YES))
    assert response.status_code == 303
    appointment = Appointment.objects.get()
    assert [getattr(appointment, name) for name in QUESTIONS] == [None] * 4
    assert not appointment.needs_clearance and not appointment.intake_answered


def test_a_treatment_asks_only_the_questions_staff_ticked(client, therapist, neck, at):
    neck.asks_pregnant = True
    neck.save()
    url = details_url(therapist, at(10), service_slug="neck")
    page = client.get(url).content.decode()
    assert asked(page) == {"intake_pregnant"}
    assert "blood thinners" not in page and "Are you pregnant" in page

    # The one question asked is still required, with the form kept.
    data = form_data(client, url, intake_pregnant=None, notes="Stiff neck.")
    refused = client.post(url, data)
    assert refused.status_code == 400
    assert "Please answer yes or no." in refused.content.decode()
    assert "Stiff neck." in refused.content.decode()

    response = client.post(url, form_data(client, url, intake_pregnant="yes"), follow=True)
    assert "please speak to your doctor before your visit" in response.content.decode()
    appointment = Appointment.objects.get()
    assert appointment.intake_pregnant is True and appointment.intake_clot_signs is None
    assert list(Appointment.objects.needing_clearance()) == [appointment]
    for email in OutgoingEmail.objects.all():  # still staff-only: no email carries it
        text = " ".join([email.subject, email.body_text, email.body_html]).lower()
        assert not any(word in text for word in TELLTALES), email.subject


def test_the_demo_keeps_four_questions_for_leg_and_deep_work_and_none_for_the_neck(seeded):
    from booking.models import Service

    asks = {service.slug: service.intake_fields for service in Service.objects.all()}
    for slug in ("calf-low-back-trigger-point", "massage-60", "massage-90"):
        assert asks[slug] == list(Appointment.INTAKE_FIELDS), slug
    assert asks["massage-30"] == []


def test_staff_choose_the_questions_on_the_treatment_in_the_admin(client, staff_user, service):
    client.force_login(staff_user)
    url = f"/admin/booking/service/{service.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="asks_pregnant"' in page and 'name="asks_clot_signs"' in page
    data = {
        "name": service.name,
        "slug": service.slug,
        "duration_minutes": service.duration_minutes,
        "buffer_minutes": service.buffer_minutes,
        "display_order": 0,
        "is_active": "on",
        "asks_pregnant": "on",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    service.refresh_from_db()
    assert service.intake_fields == ["intake_pregnant"]


def _readable(value):
    """Every reading of a cookie's value a curious person could try: as it is, and each
    dot-separated part base64-decoded (and unzipped, as Django's signed cookies compress)."""
    import base64
    import contextlib
    import zlib

    readings = [value]
    for part in value.split("."):
        for piece in part.split(":"):
            padded = piece + "=" * (-len(piece) % 4)
            try:
                raw = base64.urlsafe_b64decode(padded)
            except ValueError:
                continue
            readings.append(raw.decode("latin-1"))
            with contextlib.suppress(zlib.error):
                readings.append(zlib.decompress(raw).decode("latin-1"))
    return " ".join(readings).lower()


def test_after_a_yes_no_cookie_says_anything_about_health(client, therapist, at):
    url = details_url(therapist, at(10))
    response = client.post(url, form_data(client, url, **ALL_YES))
    assert response.status_code == 303
    set_now = {name: morsel.value for name, morsel in response.cookies.items()}
    confirmation = client.get(response["Location"])
    # The advice still reaches the patient, once, on the next page...
    assert "please speak to your doctor before your visit" in confirmation.content.decode()
    # ...but it travelled server-side: no cookie the browser holds or was sent reveals it.
    held = {name: morsel.value for name, morsel in client.cookies.items()}
    for name, value in [*set_now.items(), *held.items()]:
        text = _readable(value)
        for word in [*TELLTALES, "doctor", "health", "answered yes", "calves", "therapist"]:
            assert word not in text, f"{word!r} readable in the {name!r} cookie"
    # Shown once: a reload no longer carries it.
    again = client.get(response["Location"]).content.decode()
    assert "please speak to your doctor" not in again
    # And once shown, the session that carried it is gone, cookie and all (cached pages again).
    assert client.cookies.get("sessionid") is None or client.cookies["sessionid"].value == ""
