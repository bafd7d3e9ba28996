"""Patient data kept short: intake answers and whole patients expire; staff export and erase
one patient on request."""

import json
import logging
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from booking import personal_data, services
from booking.models import Appointment
from booking.services import PatientDetails, book_appointment
from clinic import personal_data as site_data
from clinic.models import OutgoingEmail
from newsletter.models import Subscriber
from tests.clinic.test_settings import start

pytestmark = pytest.mark.django_db

PATIENT_PAGE = "/admin/booking/appointment/patient/"
EXPORT = "/admin/booking/appointment/patient/export/"
ERASE = "/admin/booking/appointment/patient/erase/"
CHANGELIST = "/admin/booking/appointment/"
YES = dict.fromkeys(Appointment.INTAKE_FIELDS, True)


@pytest.fixture
def book(booking_rules, clinic, service, therapist, at):
    """book(hour, days=0, email=..., **patient): a confirmed appointment next week."""

    def make(hour, days=0, email="pat@example.com", name="Pat Example", **extra):
        return book_appointment(
            service=service,
            therapist=therapist,
            start=at(hour, days=days),
            patient=PatientDetails(name=name, email=email, phone="+12095550142", **extra),
        )

    return make


def later(appointment, **delta):
    return appointment.ends_at + timedelta(**delta)


def mark_all_sent():
    OutgoingEmail.objects.update(state=OutgoingEmail.State.SENT, sent_at=timezone.now())


def intake_of(appointment):
    appointment.refresh_from_db()
    return [getattr(appointment, name) for name in Appointment.INTAKE_FIELDS]


# --- intake answers -----------------------------------------------------------------------
def test_intake_answers_are_deleted_thirty_days_after_the_visit_and_not_before(book):
    visit = book(10, intake=YES, notes="Left calf sore")
    assert personal_data.clear_old_intake(now=later(visit, days=29)) == 0
    assert intake_of(visit) == [True] * 4

    assert personal_data.clear_old_intake(now=later(visit, days=30)) == 1
    assert intake_of(visit) == [None] * 4
    assert not visit.needs_clearance
    assert visit.patient_name == "Pat Example"  # only the health answers go at this point
    assert visit.notes == "Left calf sore"


def test_intake_retention_follows_the_setting(book, settings):
    settings.INTAKE_RETENTION_DAYS = 7
    visit = book(10, intake=YES)
    personal_data.clear_old_intake(now=later(visit, days=7))
    assert intake_of(visit) == [None] * 4


def test_a_cancelled_visit_loses_its_intake_that_long_after_the_cancellation(book):
    visit = book(10, days=28, intake=YES)  # far ahead: its date will not pass meanwhile
    services.cancel_appointment(appointment=visit, reason="Moving away", by_staff=True)
    visit.refresh_from_db()
    personal_data.clear_old_intake(now=visit.cancelled_at + timedelta(days=29))
    assert intake_of(visit) == [True] * 4
    personal_data.clear_old_intake(now=visit.cancelled_at + timedelta(days=30))
    assert intake_of(visit) == [None] * 4


# --- anonymising old appointments ---------------------------------------------------------
def test_appointments_older_than_the_retention_months_are_anonymised(book, staff_user):
    old = book(10, intake=YES, notes="Prefers firm pressure")
    services.cancel_appointment(appointment=old, reason="Pat's knee surgery", by_staff=True)
    recent = book(14, days=1, email="sam@example.com", name="Sam Recent")
    LogEntry.objects.create(
        user=staff_user,
        content_type=ContentType.objects.get_for_model(Appointment),
        object_id=str(old.pk),
        object_repr=str(old),
        action_flag=CHANGE,
        change_message="Cancelled: Pat's knee surgery",
    )
    # Two years after the first visit, less one day for the second.
    now = site_data.months_before(old.starts_at, -24) + timedelta(minutes=1)
    assert now < site_data.months_before(recent.starts_at, -24)

    result = site_data.apply_retention(now=now)

    assert result["anonymised"] == 1
    old.refresh_from_db()
    assert (old.patient_name, old.patient_email, old.notes, old.cancellation_reason) == (
        "Anonymised",
        "anonymised@example.invalid",
        "",
        "",
    )
    assert str(old.patient_phone) == personal_data.ANONYMOUS_PHONE
    assert intake_of(old) == [None] * 4
    # What the clinic keeps: when, what, with whom, how it ended. And it is still a valid row.
    assert old.status == Appointment.Status.CANCELLED
    old.full_clean(exclude=["submission_key"])
    entry = LogEntry.objects.get(object_id=str(old.pk))
    assert "Pat" not in entry.object_repr and "knee" not in entry.change_message
    recent.refresh_from_db()
    assert recent.patient_name == "Sam Recent"

    assert site_data.apply_retention(now=now)["anonymised"] == 0  # safe to run twice


def test_appointment_retention_follows_the_setting(book, settings):
    settings.APPOINTMENT_RETENTION_MONTHS = 3
    visit = book(10)
    site_data.apply_retention(now=site_data.months_before(visit.starts_at, -3))
    visit.refresh_from_db()
    assert visit.patient_name == "Anonymised"


def test_booking_emails_sent_that_long_ago_leave_the_outbox_but_unsent_ones_stay(book):
    visit = book(10)
    emails = OutgoingEmail.objects.order_by("pk")
    assert emails.count() == 2  # the patient's confirmation and the clinic's notice
    sent, waiting = emails
    OutgoingEmail.objects.filter(pk=sent.pk).update(
        state=OutgoingEmail.State.SENT, sent_at=timezone.now()
    )
    OutgoingEmail.objects.filter(pk=waiting.pk).update(state=OutgoingEmail.State.PENDING)

    result = site_data.apply_retention(now=site_data.months_before(visit.starts_at, -25))

    assert result["emails_deleted"] == 1
    assert list(OutgoingEmail.objects.values_list("pk", flat=True)) == [waiting.pk]


def test_months_before_keeps_the_day_or_takes_the_months_last():
    moment = timezone.now().replace(year=2026, month=3, day=31)
    assert site_data.months_before(moment, 1).date().isoformat() == "2026-02-28"
    assert site_data.months_before(moment, 24).date().isoformat() == "2024-03-31"
    assert site_data.months_before(moment, 25).date().isoformat() == "2024-02-29"


def test_the_retention_log_line_names_no_patient(book, caplog):
    visit = book(10, intake=YES)
    with caplog.at_level(logging.INFO):
        site_data.apply_retention(now=site_data.months_before(visit.starts_at, -30))
    assert "Retention:" in caplog.text
    assert "pat@example.com" not in caplog.text and "Pat" not in caplog.text


def test_the_beat_runs_the_retention_task(settings):
    from clinic.celery import app
    from clinic.tasks import apply_retention_task

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "retention" in e["task"]]
    assert [e["task"] for e in entries] == ["clinic.tasks.apply_retention"]
    assert apply_retention_task.name in app.tasks
    assert apply_retention_task.apply().get() == {
        "intake_cleared": 0,
        "anonymised": 0,
        "waitlist_expired": 0,
        "waitlist_deleted": 0,
        "health_histories_deleted": 0,
        "patients_deleted": 0,
        "emails_deleted": 0,
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INTAKE_RETENTION_DAYS", "a month"),
        ("INTAKE_RETENTION_DAYS", "-1"),
        ("APPOINTMENT_RETENTION_MONTHS", "0"),
        ("APPOINTMENT_RETENTION_MONTHS", "two years"),
    ],
)
def test_a_wrong_retention_setting_stops_start_up_naming_it(variable, value):
    result = start(DEBUG="true", **{variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Configuration error: {variable} ")


# --- export and erase one patient ----------------------------------------------------------
@pytest.fixture
def subscriber(db):
    now = timezone.now()
    return Subscriber.objects.create(
        email="pat@example.com",
        status=Subscriber.Status.CONFIRMED,
        confirmed_at=now,
        consent_text="Send me the newsletter.",
        consent_at=now,
        consent_page="/articles/",
    )


def test_export_holds_every_appointment_and_the_newsletter_record_of_that_patient(book, subscriber):
    book(10, intake=YES, notes="Left calf")
    book(14, email="PAT@Example.com")  # the same person, typed differently
    book(10, days=1, email="sam@example.com", name="Sam Other")

    data = json.loads(json.dumps(site_data.export(email="Pat@example.com ")))

    assert [a["email"] for a in data["appointments"]] == ["pat@example.com", "PAT@Example.com"]
    first = data["appointments"][0]
    assert first["intake"] == YES and first["notes"] == "Left calf"
    assert first["phone"] == "+12095550142" and first["status"] == "confirmed"
    assert first["language"] == "en" and data["newsletter"]["language"] == "en"
    assert data["newsletter"]["status"] == "confirmed"
    assert data["newsletter"]["consent_text"] == "Send me the newsletter."
    assert "Sam" not in json.dumps(data)


def test_erasing_a_patient_anonymises_their_visits_and_removes_subscription_and_emails(
    book, subscriber
):
    first = book(10, intake=YES, notes="Left calf")
    other = book(14, email="sam@example.com", name="Sam Other")
    services.cancel_appointment(appointment=first, reason="Pat is moving", by_staff=True)
    mark_all_sent()
    to_sam = OutgoingEmail.objects.filter(to__icontains="sam@example.com").count()
    assert to_sam

    erased = site_data.erase(email="PAT@example.com")

    assert (erased["appointments"], erased["newsletter"]) == (1, 1)
    assert erased["emails"] == 2  # Pat's confirmation and cancellation notice
    first.refresh_from_db()
    assert (first.patient_name, first.notes, first.cancellation_reason) == ("Anonymised", "", "")
    assert intake_of(first) == [None] * 4
    assert not Subscriber.objects.filter(email__iexact="pat@example.com").exists()
    assert not any(
        "pat@example.com" in address.lower()
        for email in OutgoingEmail.objects.all()
        for address in email.to
    )
    other.refresh_from_db()
    assert other.patient_name == "Sam Other"
    assert OutgoingEmail.objects.filter(to__icontains="sam@example.com").count() == to_sam
    assert site_data.export(email="pat@example.com")["appointments"] == []


def test_a_patient_with_a_visit_ahead_is_not_erased(book, subscriber):
    visit = book(10)
    with pytest.raises(site_data.ErasureRefused):
        site_data.erase(email="pat@example.com")
    visit.refresh_from_db()
    assert visit.patient_name == "Pat Example"
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()


# --- the admin pages ----------------------------------------------------------------------
@pytest.fixture
def staff(client, staff_user, clinic, booking_rules):
    client.force_login(staff_user)
    return client


@pytest.fixture
def past_visit(book):
    """Pat's visit, cancelled by staff, so nothing is ahead and it can be erased."""
    visit = book(10, intake=YES)
    services.cancel_appointment(appointment=visit, reason="Unwell", by_staff=True)
    mark_all_sent()
    visit.refresh_from_db()
    return visit


def test_staff_find_a_patient_by_email_and_see_what_is_held(staff, past_visit, subscriber):
    response = staff.post(PATIENT_PAGE, {"email": "pat@example.com"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 appointment(s)" in page and "Pat Example" in page
    assert "Newsletter: confirmed" in page
    assert "Erase this patient" in page


def test_staff_download_a_patients_data_as_json(staff, past_visit, subscriber):
    response = staff.post(EXPORT, {"email": "pat@example.com"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="patient-data.json"'
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["appointments"][0]["intake"] == YES
    assert data["newsletter"]["email"] == "pat@example.com"
    assert LogEntry.objects.filter(change_message__contains="Exported").count() == 1


def test_erasing_from_the_admin_asks_first_then_erases(staff, past_visit, subscriber):
    response = staff.post(ERASE, {"email": "pat@example.com"})
    assert response.status_code == 200
    assert "cannot be undone" in response.content.decode()
    past_visit.refresh_from_db()
    assert past_visit.patient_name == "Pat Example"  # only asked so far

    response = staff.post(ERASE, {"email": "pat@example.com", "confirm_erase": "yes"})

    assert response.status_code == 302 and response.url == CHANGELIST
    assert "pat" not in response.url
    past_visit.refresh_from_db()
    assert past_visit.patient_name == "Anonymised"
    assert not Subscriber.objects.exists()
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Erased: 1 appointment(s) anonymised, 0 waitlist entry(ies) deleted, "
        "0 signed health history version(s) deleted, 1 newsletter subscription(s), "
        "1 patient record(s) deleted and 2 sent email(s) deleted."
    ]


def test_erasing_is_refused_while_a_visit_is_ahead(staff, book):
    visit = book(10)
    response = staff.post(ERASE, {"email": "pat@example.com", "confirm_erase": "yes"})
    assert response.status_code == 409
    assert "cancel it before erasing" in response.content.decode()
    visit.refresh_from_db()
    assert visit.patient_name == "Pat Example"


def test_the_list_action_opens_the_patient_page_for_one_patient_only(staff, book):
    mine = [book(10), book(14, email="Pat@Example.com")]
    response = staff.post(
        CHANGELIST, {"action": "patient_data", "_selected_action": [a.pk for a in mine]}
    )
    assert response.status_code == 200 and "What is held about" in response.content.decode()

    other = book(10, days=1, email="sam@example.com", name="Sam Other")
    response = staff.post(
        CHANGELIST,
        {"action": "patient_data", "_selected_action": [mine[0].pk, other.pk]},
        follow=True,
    )
    assert "one email address" in response.content.decode()


def test_staff_who_may_only_view_appointments_cannot_erase(client, django_user_model, book):
    viewer = django_user_model.objects.create_user(
        username="viewer", password="a-long-staff-password", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_appointment"))
    client.force_login(viewer)
    visit = book(10)
    assert client.post(PATIENT_PAGE, {"email": "pat@example.com"}).status_code == 200
    response = client.post(ERASE, {"email": "pat@example.com", "confirm_erase": "yes"})
    assert response.status_code == 403
    visit.refresh_from_db()
    assert visit.patient_name == "Pat Example"


def test_a_malformed_email_is_a_form_error_not_a_search(staff, book):
    book(10)
    response = staff.post(PATIENT_PAGE, {"email": "not an address"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter a valid email address" in page and "What is held about" not in page
