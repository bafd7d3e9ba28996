"""The patient record: one per person across visits. When a booking joins it (only once the
address is proven), the newsletter and waitlist links, staff's merge (everything re-points,
nothing lost), the patient's admin page, and export and erase from the record."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from booking import services
from booking.health import sign_health_history
from booking.models import Appointment, ConsentText, HealthHistory, WaitlistEntry
from booking.services import PatientDetails, book_appointment
from clinic import personal_data
from clinic.models import Patient
from clinic.patients import merge_patients, new_patient, prove_email
from newsletter.models import Subscriber
from tests.conftest import race

pytestmark = pytest.mark.django_db

ANSWERS = {
    "conditions": "Zebrafish syndrome",
    "medications": "",
    "areas_to_avoid": "",
    "pressure": "firm",
    "emergency_name": "Robin",
    "emergency_phone": "+12095550199",
    "intake_clot_signs": False,
    "intake_surgery_or_immobility": False,
    "intake_blood_thinners": False,
    "intake_pregnant": False,
}


@pytest.fixture(autouse=True)
def _rules(booking_rules, clinic, therapist):
    return booking_rules


def book(service, therapist, start, email="pat@example.com", name="Pat Example"):
    return book_appointment(
        service=service,
        therapist=therapist,
        start=start,
        patient=PatientDetails(name=name, email=email, phone="+12095550142"),
    )


def signed(patient, **answers):
    return sign_health_history(
        patient=patient,
        answers={**ANSWERS, **answers},
        signed_name=patient.name,
        consent_version=ConsentText.current().version,
        language="en",
    )


def waiting(service, day, email, patient=None):
    return WaitlistEntry.objects.create(
        service=service,
        first_day=day,
        last_day=day,
        name="Pat Example",
        email=email,
        phone="+12095550142",
        morning=True,
        afternoon=True,
        evening=True,
        patient=patient,
    )


def subscribed(email, patient=None):
    now = timezone.now()
    return Subscriber.objects.create(
        email=email, status="confirmed", confirmed_at=now, patient=patient
    )


# --- proving an address -------------------------------------------------------------------------
def test_proving_an_address_makes_one_verified_record_and_is_safe_twice(service, therapist, at):
    visit = book(service, therapist, at(10))
    record = prove_email(patient=visit.patient)
    assert record.verified_at is not None
    assert prove_email(patient=record) == record
    assert Patient.objects.verified().count() == 1


def test_a_confirmed_newsletter_sign_up_joins_the_record_once_the_address_is_proven(
    service, therapist, at
):
    confirmed = subscribed("pat@example.com")
    pending = Subscriber.objects.create(email="other@example.com")
    visit = book(service, therapist, at(10))
    assert Subscriber.objects.get(pk=confirmed.pk).patient is None  # not on an unproven record
    record = prove_email(patient=visit.patient)
    assert Subscriber.objects.get(pk=confirmed.pk).patient == record
    assert Subscriber.objects.get(pk=pending.pk).patient is None


def test_confirming_the_newsletter_links_the_addresss_verified_record_only(service, therapist, at):
    from newsletter.services import confirm_subscription

    unproven = book(service, therapist, at(10), email="new@example.com").patient
    subscriber = Subscriber.objects.create(email="new@example.com")
    confirm_subscription(subscriber=subscriber)
    assert subscriber.patient is None  # the record's address is not proven
    record = prove_email(patient=unproven)
    assert Subscriber.objects.get(pk=subscriber.pk).patient == record  # proven both ways now
    # A sign-up confirmed after the record was proven is linked at once.
    second = Subscriber.objects.create(email="pat@example.com")
    book(service, therapist, at(14))
    pats = prove_email(patient=Appointment.objects.get(starts_at=at(14)).patient)
    confirm_subscription(subscriber=second)
    assert second.patient == pats


def test_booking_from_a_waitlist_offer_emailed_to_the_address_proves_it(service, therapist, at):
    earlier = prove_email(patient=book(service, therapist, at(9), email="w@example.com").patient)
    Subscriber.objects.all().delete()
    entry = waiting(service, at(14).date(), "w@example.com")
    visit = book(service, therapist, at(14), email="x@example.com")
    services.cancel_appointment(appointment=visit)
    hold = services.offer_freed_time(therapist_id=therapist.pk, start=at(14))
    assert hold.entry == entry
    claimed = book_appointment(
        service=service,
        therapist=therapist,
        start=at(14),
        patient=PatientDetails(name="W", email="W@example.com", phone="+12095550142"),
        hold=hold,
    )
    assert claimed.patient == earlier
    assert WaitlistEntry.objects.get(pk=entry.pk).patient == earlier


# --- merging ------------------------------------------------------------------------------------
@pytest.fixture
def two_records(service, therapist, at):
    """One person known by two addresses, each with a visit, a waitlist entry, a newsletter
    subscription and a signed history."""
    home = prove_email(patient=book(service, therapist, at(9)).patient)
    work = prove_email(
        patient=book(service, therapist, at(11), email="pat.work@example.com").patient
    )
    for record in (home, work):
        waiting(service, at(15).date(), record.email, patient=record)
        subscribed(record.email, patient=record)
        signed(record, conditions=f"Signed as {record.email}")
    return home, work


def held_by(record):
    return {
        "appointments": set(record.appointments.values_list("pk", flat=True)),
        "waitlist": set(record.waitlist_entries.values_list("pk", flat=True)),
        "newsletter": set(record.newsletter_subscriptions.values_list("pk", flat=True)),
        "histories": set(record.health_histories.values_list("pk", flat=True)),
    }


def test_merging_moves_everything_to_the_record_kept_and_loses_nothing(two_records):
    home, work = two_records
    before = {key: held_by(home)[key] | held_by(work)[key] for key in held_by(home)}
    signatures = list(HealthHistory.objects.order_by("pk").values())

    kept = merge_patients(keep=home, other=work)

    assert not Patient.objects.filter(pk=work.pk).exists()
    assert held_by(kept) == before
    assert all(len(ids) == 2 for ids in before.values())
    assert kept.emails == ["pat@example.com", "pat.work@example.com"]
    # The signed histories are as they were signed, only their record changed.
    after = list(HealthHistory.objects.order_by("pk").values())
    for old, new in zip(signatures, after, strict=True):
        assert {**old, "patient_id": kept.pk} == new
    assert Appointment.objects.filter(patient__isnull=True).count() == 0


def test_staff_merge_two_records_from_the_list_choosing_which_to_keep(
    client, staff_user, two_records
):
    home, work = two_records
    client.force_login(staff_user)
    url = "/admin/clinic/patient/"
    selected = {"action": "merge", "_selected_action": [home.pk, work.pk]}
    asked = client.post(url, selected)
    assert asked.status_code == 200
    assert "Nothing is lost." in asked.content.decode()
    assert Patient.objects.filter(pk__in=[home.pk, work.pk]).count() == 2  # only asked
    done = client.post(url, {**selected, "keep": str(work.pk)})
    assert done.status_code == 302 and done.url.endswith(f"/{work.pk}/change/")
    work.refresh_from_db()
    assert not Patient.objects.filter(pk=home.pk).exists()
    assert work.appointments.count() == 2 and work.health_histories.count() == 2
    assert "pat@example.com" in work.emails
    # A wrong choice (not one of the two) is refused, nothing merged.
    third = new_patient(name="Third", email="third@example.com")
    fourth = new_patient(name="Fourth", email="fourth@example.com")
    both = {"action": "merge", "_selected_action": [third.pk, fourth.pk]}
    refused = client.post(url, {**both, "keep": "999999"})
    assert refused.status_code == 400
    assert Patient.objects.filter(pk__in=[third.pk, fourth.pk]).count() == 2
    one = client.post(url, {"action": "merge", "_selected_action": [third.pk]}, follow=True)
    assert "Select exactly two records to merge." in one.content.decode()


# --- the patient's page, export and erase ------------------------------------------------------
def test_the_patients_page_shows_visits_attendance_histories_newsletter_and_waitlist(
    client, staff_user, two_records, service, therapist, at
):
    home = merge_patients(keep=two_records[0], other=two_records[1])
    past = book(service, therapist, at(13))
    Appointment.objects.filter(pk=past.pk).update(
        patient=home,
        starts_at=at(13, days=-60),
        ends_at=at(14, days=-60),
        blocked_until=at(14, days=-60),
        status="no_show",
    )
    late = book(service, therapist, at(15))
    Appointment.objects.filter(pk=late.pk).update(patient=home)
    services.cancel_appointment(appointment=late, by_staff=True, now=at(13))
    signed(home, conditions="Third version")
    client.force_login(staff_user)
    page = client.get(f"/admin/clinic/patient/{home.pk}/change/").content.decode()
    assert "Upcoming" in page and "Past" in page
    assert "No-shows: 1" in page and "Late cancellations: 1" in page
    assert "Version 3 (latest)" in page and "Version 1" in page
    assert "consent text version 1" in page and "Third version" in page
    assert "Newsletter" in page and "pat.work@example.com: Confirmed" in page
    assert "Waitlist" in page and "Waiting" in page
    assert "History missing" not in page.split("Upcoming")[1].split("Past")[0]


def test_export_from_the_record_covers_every_address_and_the_history(
    client, staff_user, two_records
):
    home = merge_patients(keep=two_records[0], other=two_records[1])
    client.force_login(staff_user)
    response = client.post(f"/admin/clinic/patient/{home.pk}/export/")
    assert response.status_code == 200
    data = json.loads(response.content)
    assert data["email"] == "pat@example.com" and data["other_emails"] == ["pat.work@example.com"]
    assert {a["email"] for a in data["appointments"]} == {
        "pat@example.com",
        "pat.work@example.com",
    }
    assert len(data["health_histories"]) == 2
    assert data["health_histories"][0]["consent_text_version"] == 1
    # Whether each version was signed by someone who had proven the address, as staff see it.
    assert sorted(h["address_proven_at_signing"] for h in data["health_histories"]) == sorted(
        h.signed_with_proven_address for h in home.health_histories.all()
    )
    assert len(data["waitlist"]) == 2 and len(data["newsletter"]) == 2
    assert client.get(f"/admin/clinic/patient/{home.pk}/export/").status_code == 403


def test_erase_from_the_record_is_refused_while_a_visit_is_ahead_then_removes_everything(
    client, staff_user, two_records
):
    home = merge_patients(keep=two_records[0], other=two_records[1])
    client.force_login(staff_user)
    url = f"/admin/clinic/patient/{home.pk}/erase/"
    refused = client.post(url, {"confirm_erase": "yes"}, follow=True)
    assert "has a visit ahead" in refused.content.decode()
    assert Patient.objects.filter(pk=home.pk).exists()

    month = timedelta(days=30)  # both visits a month back: in the past whatever today is
    Appointment.objects.update(
        starts_at=F("starts_at") - month,
        ends_at=F("ends_at") - month,
        blocked_until=F("blocked_until") - month,
    )
    asked = client.post(url)
    assert asked.status_code == 200 and "cannot be undone" in asked.content.decode()
    done = client.post(url, {"confirm_erase": "yes"})
    assert done.status_code == 302
    assert not Patient.objects.exists()
    assert not HealthHistory.objects.exists()
    assert not Subscriber.objects.exists() and not WaitlistEntry.objects.exists()
    assert set(Appointment.objects.values_list("patient_name", flat=True)) == {"Anonymised"}


def test_a_record_nobody_booked_with_for_the_retention_time_goes_with_its_histories(
    two_records, settings
):
    from clinic.personal_data import months_before

    home, work = two_records
    Patient.objects.filter(pk=home.pk).update(
        last_seen_at=months_before(timezone.now(), settings.APPOINTMENT_RETENTION_MONTHS + 1)
    )
    counts = personal_data.apply_retention()
    assert counts["patients_deleted"] == 1 and counts["health_histories_deleted"] == 1
    assert list(Patient.objects.all()) == [work]


# --- races (PostgreSQL: each thread its own connection) -----------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_ten_records_of_one_address_proven_at_once_end_as_one(booking_rules, clinic):
    records = [new_patient(name=f"Pat {n}", email="Pat@Example.com") for n in range(10)]
    results = race(lambda i: prove_email(patient=records[i]).pk, count=10)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    assert Patient.objects.count() == 1 and Patient.objects.verified().count() == 1


def test_an_appointments_admin_page_links_its_patient_record(
    client, staff_user, service, therapist, at
):
    visit = book(service, therapist, at(10))
    client.force_login(staff_user)
    page = client.get(f"/admin/booking/appointment/{visit.pk}/change/").content.decode()
    assert f'href="/admin/clinic/patient/{visit.patient_id}/change/"' in page


def test_staff_correct_a_name_but_not_the_proven_address(
    client, staff_user, service, therapist, at
):
    record = prove_email(patient=book(service, therapist, at(10)).patient)
    client.force_login(staff_user)
    url = f"/admin/clinic/patient/{record.pk}/change/"
    data = {"name": "Pat Q. Example", "phone": "+12095550142", "language": "en"}
    response = client.post(url, {**data, "email": "someone.else@example.com"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.name == "Pat Q. Example" and record.email == "pat@example.com"
