"""The booking's part of a person's data (clinic.personal_data): their appointments.

What an anonymised appointment keeps: when, what, with whom and how it ended (the clinic's
records and the schedule's history); nothing that names or reaches the patient. The phone
is a number reserved for fiction (555-01xx), so the row still passes full_clean.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.locking import lock
from clinic.personal_data import PersonalData, isoformat, months_before, register

from .models import (
    Appointment,
    BookingRules,
    HealthHistory,
    Hold,
    LatestHistory,
    Vacancy,
    WaitlistEntry,
)

ANONYMOUS_NAME = "Anonymised"
ANONYMOUS_EMAIL = "anonymised@example.invalid"
ANONYMOUS_PHONE = "+12025550100"
RETENTION_BATCH = 500


def patient_appointments(*, email):
    """The appointments booked with `email` (any case), anonymised ones left out."""
    return Appointment.objects.filter(patient_email__iexact=email.strip()).exclude(
        patient_email=ANONYMOUS_EMAIL
    )


def upcoming_visits(*, email, now=None):
    """The patient's confirmed appointments that have not started yet."""
    now = now or timezone.now()
    return patient_appointments(email=email).filter(
        status=Appointment.Status.CONFIRMED, starts_at__gt=now
    )


def _scrub_admin_log(ids):
    """The admin's history of these appointments names them by patient, and a staff cancel
    copies its reason there: keep that something happened, drop who and why."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Appointment),
        object_id__in=[str(pk) for pk in ids],
    )
    entries.update(object_repr=f"{ANONYMOUS_NAME} appointment")
    entries.filter(change_message__startswith="Cancelled:").update(
        change_message="Cancelled (reason erased)."
    )


def _anonymise(appointments):
    """Strip the patient from `appointments`; returns how many rows changed.

    One UPDATE per batch, so it neither sends anything nor bumps the calendar sequence.
    Already anonymised rows are left out, so running it twice changes nothing. Must run
    inside a transaction.
    """
    ids = list(appointments.exclude(patient_email=ANONYMOUS_EMAIL).values_list("pk", flat=True))
    for start in range(0, len(ids), RETENTION_BATCH):
        batch = ids[start : start + RETENTION_BATCH]
        Appointment.objects.filter(pk__in=batch).update(
            patient_name=ANONYMOUS_NAME,
            patient_email=ANONYMOUS_EMAIL,
            patient_phone=ANONYMOUS_PHONE,
            notes="",
            cancellation_reason="",
            **{name: None for name in Appointment.INTAKE_FIELDS},
        )
        _scrub_admin_log(batch)
    return len(ids)


def clear_old_intake(*, now=None):
    """Delete the intake answers of visits that ended INTAKE_RETENTION_DAYS ago or more, and
    of cancelled visits that long after they were cancelled; returns how many rows changed."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.INTAKE_RETENTION_DAYS)
    answered = Q()
    for name in Appointment.INTAKE_FIELDS:
        answered |= Q(**{f"{name}__isnull": False})
    return (
        Appointment.objects.filter(answered)
        .filter(Q(ends_at__lte=cutoff) | Q(cancelled_at__lte=cutoff))
        .update(**{name: None for name in Appointment.INTAKE_FIELDS})
    )


def anonymise_old_appointments(*, now=None):
    """Anonymise appointments that started APPOINTMENT_RETENTION_MONTHS ago or more; returns
    how many. Safe to run twice."""
    now = now or timezone.now()
    cutoff = months_before(now, settings.APPOINTMENT_RETENTION_MONTHS)
    with transaction.atomic():
        return _anonymise(Appointment.objects.filter(starts_at__lte=cutoff))


def _exported(appointment):
    a = appointment
    return {
        "starts_at": isoformat(a.starts_at),
        "ends_at": isoformat(a.ends_at),
        "service": a.service.name,
        "therapist": a.therapist.name,
        "status": a.status,
        "name": a.patient_name,
        "email": a.patient_email,
        "phone": str(a.patient_phone),
        "notes": a.notes,
        "language": a.language,
        "intake": {name: getattr(a, name) for name in Appointment.INTAKE_FIELDS},
        "agreed_to_cancellation_policy_at": isoformat(a.consented_to_policy_at),
        "booked_at": isoformat(a.created_at),
        "cancelled_at": isoformat(a.cancelled_at),
        "cancellation_reason": a.cancellation_reason,
        "came_from_article": a.source_article.slug if a.source_article else None,
    }


@register
class Appointments(PersonalData):
    """Each appointment booked with the address: the details typed, the intake answers."""

    key = "appointments"
    erased_label = "{} appointment(s) anonymised"
    summary_template = "admin/booking/_personal_data.html"
    erase_template = "admin/booking/_personal_data_erase.html"
    order = 10

    def summary(self, email, *, now):
        return {
            "appointments": list(
                patient_appointments(email=email)
                .select_related("service", "therapist")
                .order_by("starts_at")
            ),
            "upcoming": list(upcoming_visits(email=email, now=now)),
        }

    def export(self, email):
        appointments = (
            patient_appointments(email=email)
            .select_related("service", "therapist", "source_article")
            .order_by("starts_at", "pk")
        )
        return [_exported(appointment) for appointment in appointments]

    def lock(self, email):
        lock(patient_appointments(email=email).values_list("pk", flat=True))

    def refusal(self, email, *, now):
        """A confirmed visit ahead would stay in the schedule under no name, and its reminder
        would go nowhere: staff cancel it first."""
        if upcoming_visits(email=email, now=now).exists():
            return _("This patient has a visit ahead: cancel it before erasing their data.")
        return None

    def erase(self, email, *, now):
        return _anonymise(patient_appointments(email=email))

    patient_template = "admin/booking/_patient_visits.html"

    def patient_summary(self, patient, *, now):
        from .health import history_state

        cutoff = BookingRules.current().cancel_cutoff
        visits = list(
            patient.appointments.select_related("service", "therapist").order_by("starts_at")
        )
        latest = HealthHistory.objects.latest_per_patient([patient.pk]).get(
            patient.pk, LatestHistory()
        )
        upcoming = [a for a in visits if a.is_active and a.starts_at > now]
        for visit in upcoming:
            visit.history_state = history_state(latest.signed_at, visit.starts_at)
            visit.history_unconfirmed = latest.unconfirmed
        return {
            "upcoming": upcoming,
            "past": [a for a in visits if a.starts_at <= now and a.is_active][::-1],
            "no_shows": [a for a in visits if a.status == Appointment.Status.NO_SHOW],
            "late_cancellations": [
                a
                for a in visits
                if a.status == Appointment.Status.CANCELLED
                and a.cancelled_at > a.starts_at - cutoff
            ],
            "cancelled": [a for a in visits if a.status == Appointment.Status.CANCELLED],
        }

    def repoint(self, *, source, target):
        Appointment.objects.filter(patient=source).update(patient=target)

    def apply_retention(self, *, now):
        return {
            "intake_cleared": clear_old_intake(now=now),
            "anonymised": anonymise_old_appointments(now=now),
        }


# A waitlist entry is kept this long after its last day (staff's "filled from the waitlist"
# count reads it), then deleted.
WAITLIST_KEEP_DAYS = 30


def expire_waitlist_entries(*, now=None):
    """Entries whose last day has passed stop waiting; entries that ended WAITLIST_KEEP_DAYS
    ago or more are deleted. Returns (expired, deleted); safe to run twice."""
    today = timezone.localdate(now or timezone.now())
    expired = (
        WaitlistEntry.objects.waiting()
        .filter(last_day__lt=today)
        .update(state=WaitlistEntry.State.EXPIRED)
    )
    _total, per_model = WaitlistEntry.objects.filter(
        last_day__lt=today - timedelta(days=WAITLIST_KEEP_DAYS)
    ).delete()
    deleted = per_model.get(WaitlistEntry._meta.label, 0)
    # The record of freed times offered (no personal data) is kept as long.
    Vacancy.objects.filter(
        offered_at__lt=(now or timezone.now()) - timedelta(days=WAITLIST_KEEP_DAYS)
    ).delete()
    return expired, deleted


@register
class Waitlist(PersonalData):
    """Each waitlist entry made with the address: who to tell, and what would suit them."""

    key = "waitlist"
    erased_label = "{} waitlist entry(ies) deleted"
    summary_template = "admin/booking/_personal_data_waitlist.html"
    erase_template = "admin/booking/_personal_data_waitlist_erase.html"
    order = 11

    def _entries(self, email):
        return WaitlistEntry.objects.for_email(email.strip()).select_related("service", "therapist")

    def summary(self, email, *, now):
        return {"waitlist": list(self._entries(email))}

    def export(self, email):
        return [
            {
                "service": entry.service.name,
                "therapist": entry.therapist.name if entry.therapist else None,
                "first_day": entry.first_day.isoformat(),
                "last_day": entry.last_day.isoformat(),
                "days": entry.days,
                "parts_of_day": sorted(entry.parts),
                "name": entry.name,
                "email": entry.email,
                "phone": str(entry.phone),
                "language": entry.language,
                "joined_at": isoformat(entry.joined_at),
                "state": entry.state,
            }
            for entry in self._entries(email).order_by("joined_at", "pk")
        ]

    def lock(self, email):
        lock(self._entries(email).values_list("pk", flat=True))

    patient_template = "admin/booking/_patient_waitlist.html"

    def patient_summary(self, patient, *, now):
        return {"waitlist": list(patient.waitlist_entries.select_related("service", "therapist"))}

    def repoint(self, *, source, target):
        WaitlistEntry.objects.filter(patient=source).update(patient=target)

    def erase(self, email, *, now):
        from .services import release_hold

        # A time held for them goes to the next in line rather than vanishing with the row.
        for hold in Hold.objects.active().filter(entry__in=self._entries(email)):
            release_hold(hold=hold, now=now)
        _total, per_model = self._entries(email).delete()
        return per_model.get(WaitlistEntry._meta.label, 0)

    def apply_retention(self, *, now):
        expired, deleted = expire_waitlist_entries(now=now)
        return {"waitlist_expired": expired, "waitlist_deleted": deleted}


def _history_exported(history):
    return {
        "signed_at": isoformat(history.signed_at),
        "signed_name": history.signed_name,
        "consent_text_version": history.consent_text.version,
        "address_proven_at_signing": history.signed_with_proven_address,
        "language": history.language,
        "conditions": history.conditions,
        "medications": history.medications,
        "areas_to_avoid": history.areas_to_avoid,
        "pressure": history.pressure,
        "emergency_contact": history.emergency_name,
        "emergency_phone": str(history.emergency_phone),
        "intake": {name: getattr(history, name) for name in Appointment.INTAKE_FIELDS},
    }


@register
class HealthHistories(PersonalData):
    """Each signed version of the health history and consent, on the patient records with
    the address (health data: staff and the patient only)."""

    key = "health_histories"
    erased_label = "{} signed health history version(s) deleted"
    erase_template = "admin/booking/_personal_data_health_erase.html"
    patient_template = "admin/booking/_patient_health.html"
    order = 12

    def _histories(self, email):
        return HealthHistory.objects.filter(patient__email__iexact=email.strip())

    def export(self, email):
        histories = self._histories(email).select_related("consent_text").order_by("signed_at")
        return [_history_exported(history) for history in histories]

    def lock(self, email):
        lock(self._histories(email).values_list("pk", flat=True))

    def erase(self, email, *, now):
        _total, per_model = self._histories(email).delete()
        return per_model.get(HealthHistory._meta.label, 0)

    def patient_summary(self, patient, *, now):
        from .health import history_state, versions

        histories = versions(patient)
        latest = histories[-1] if histories else None
        return {
            "histories": histories[::-1],
            "state_now": history_state(latest.signed_at if latest else None, now),
            "unconfirmed_now": latest is not None and latest.unconfirmed,
        }

    def repoint(self, *, source, target):
        # Re-pointing is not editing: what was signed stays as it was (a queryset update).
        HealthHistory.objects.filter(patient=source).update(patient=target)

    def apply_retention(self, *, now):
        """A record nobody booked with for as long as appointments are kept loses its
        histories (clinic's part then deletes the record itself)."""
        cutoff = months_before(now, settings.APPOINTMENT_RETENTION_MONTHS)
        _total, per_model = HealthHistory.objects.filter(patient__last_seen_at__lte=cutoff).delete()
        return {"health_histories_deleted": per_model.get(HealthHistory._meta.label, 0)}
