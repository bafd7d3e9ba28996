"""Booking: reading free times from the database and booking one of them."""

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from clinic.mail import queue_templated_email
from clinic.models import Closure, OutgoingEmail

from . import slots
from .calendar import appointment_ics, calendar_mimetype
from .models import Appointment, BookingRules, Service, Therapist, TimeOff, WorkingHours


class SlotUnavailable(Exception):
    """The time asked for is not free (any more), or cannot be booked online."""


@dataclass(frozen=True)
class Patient:
    name: str
    email: str
    phone: str
    notes: str = ""
    # Intake answers (True, False, or None when not asked): health data, staff eyes only.
    intake: dict = field(default_factory=dict)


class TooLateToChange(Exception):
    """The cut-off for changing or cancelling online has passed."""


def clinic_zone():
    return timezone.get_default_timezone()


def load_schedules(*, therapists, first_day, last_day, ignoring=None):
    """The engine's inputs for `therapists` between two local days, in four queries.

    Returns (schedules, closures): one slots.TherapistSchedule per therapist, and the
    clinic's closures as (first day, last day) pairs. `ignoring` (an appointment) does not
    count as busy: it is the one being moved.
    """
    tz = clinic_zone()
    # A day's margin either side: a long appointment or time off can reach across midnight.
    start = datetime.combine(first_day - timedelta(days=1), time(0), tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=2), time(0), tzinfo=tz)
    ids = [therapist.pk for therapist in therapists]
    weekly = WorkingHours.objects.filter(therapist_id__in=ids).as_weekly()
    busy = {pk: [] for pk in ids}
    for therapist_id, starts_at, ends_at in (
        TimeOff.objects.filter(therapist_id__in=ids)
        .overlapping(start, end)
        .values_list("therapist_id", "starts_at", "ends_at")
    ):
        busy[therapist_id].append((starts_at, ends_at))
    appointments = Appointment.objects.active().filter(therapist_id__in=ids).within(start, end)
    if ignoring is not None:
        appointments = appointments.exclude(pk=ignoring.pk)
    for therapist_id, starts_at, blocked_until in appointments.values_list(
        "therapist_id", "starts_at", "blocked_until"
    ):
        busy[therapist_id].append((starts_at, blocked_until))
    closures = list(
        Closure.objects.covering(first_day, last_day).values_list("starts_on", "ends_on")
    )
    schedules = [slots.TherapistSchedule(pk, weekly.get(pk, {}), busy[pk]) for pk in ids]
    return schedules, closures


def free_starts(*, service, therapists, first_day, last_day, now=None, rules=None, ignoring=None):
    """{therapist id: [free starts]} for `service` between two local days (both included)."""
    now = now or timezone.now()
    rules = rules or BookingRules.current()
    schedules, closures = load_schedules(
        therapists=therapists, first_day=first_day, last_day=last_day, ignoring=ignoring
    )
    return slots.free_starts(
        schedules=schedules,
        closures=closures,
        duration=service.duration,
        buffer=service.buffer,
        rules=rules.for_engine(),
        first_day=first_day,
        last_day=last_day,
        tz=clinic_zone(),
        now=now,
    )


def book_appointment(
    *,
    service,
    therapist,
    start,
    patient,
    submission_key=None,
    source_article=None,
    language=None,
    now=None,
):
    """Book `start` for `patient` with `therapist` (None: whoever offering `service` is free).

    Locks the candidate therapists' rows, then re-checks everything from the database
    (rules, hours, closures, appointments: never a cached copy) before inserting. The
    confirmation emails are written in the same transaction. A `submission_key` seen before
    returns the appointment it booked instead of booking again (a double-clicked submit).
    On PostgreSQL an exclusion constraint is the guarantee; a violation here is reported
    as SlotUnavailable like any other lost race. `language` is the patient's (default
    English): it is kept with the appointment and every email to them is written in it.
    """
    now = now or timezone.now()
    tz = clinic_zone()
    with transaction.atomic():
        if submission_key:
            earlier = Appointment.objects.filter(submission_key=submission_key).first()
            if earlier:
                return earlier
        service = Service.objects.active().filter(pk=service.pk).first()
        if service is None:
            raise SlotUnavailable(_("That service can no longer be booked online."))
        candidates = Therapist.objects.offering(service).order_by("pk")
        if therapist is not None:
            candidates = candidates.filter(pk=therapist.pk)
        # Locked in one order (by id), so two bookings of "no preference" cannot deadlock.
        candidates = list(candidates.select_for_update())
        if submission_key:
            # Again under the lock: an identical submit that held it first has committed by
            # now, and its patient must get that booking, not "that time was just taken".
            earlier = Appointment.objects.filter(submission_key=submission_key).first()
            if earlier:
                return earlier
        if not candidates:
            raise SlotUnavailable(_("That therapist does not offer this service online."))
        day = start.astimezone(tz).date()
        free = free_starts(
            service=service, therapists=candidates, first_day=day, last_day=day, now=now
        )
        chosen = next((c for c in candidates if start in set(free.get(c.pk, ()))), None)
        if chosen is None:
            raise SlotUnavailable(_("Sorry, that time was just taken or is no longer free."))
        appointment = Appointment(
            therapist=chosen,
            service=service,
            starts_at=start,
            ends_at=start + service.duration,
            blocked_until=start + service.duration + service.buffer,
            patient_name=patient.name,
            patient_email=patient.email,
            patient_phone=patient.phone,
            notes=patient.notes,
            consented_to_policy_at=now,
            submission_key=submission_key or None,
            created_at=now,
            scheduled_at=now,
            source_article=source_article,
            language=language or settings.LANGUAGE_CODE,
            **{name: patient.intake.get(name) for name in Appointment.INTAKE_FIELDS},
        )
        appointment.full_clean(exclude=["submission_key"])
        try:
            with transaction.atomic():
                appointment.save()
        except IntegrityError as exc:
            if submission_key and "submission_key" in str(exc):
                return Appointment.objects.get(submission_key=submission_key)
            raise SlotUnavailable(
                _("Sorry, that time was just taken or is no longer free.")
            ) from exc
        _write_confirmation_emails(appointment, now=now)
    return appointment


def confirmation_url(appointment):
    return settings.SITE_URL + reverse(
        "booking:confirmation", kwargs={"token": appointment.public_token}
    )


MANAGE_SALT = "booking.manage"
# A link stops working this long after its appointment ended: old emails stop showing it.
MANAGE_LINK_GRACE = timedelta(days=30)


def manage_token(appointment):
    """A signed token for the patient's manage link: no login, unguessable, tamper-proof."""
    return signing.dumps(appointment.public_token, salt=MANAGE_SALT)


def appointment_for_token(token, *, now=None):
    """The appointment a manage token names, or None for a wrong, tampered or stale token."""
    now = now or timezone.now()
    if len(token) > 200:
        return None
    try:
        public_token = signing.loads(token, salt=MANAGE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(public_token, str):
        return None
    appointment = (
        Appointment.objects.select_related("service", "therapist")
        .filter(public_token=public_token)
        .first()
    )
    if appointment is None or appointment.ends_at + MANAGE_LINK_GRACE < now:
        return None
    return appointment


def manage_url(appointment):
    return settings.SITE_URL + reverse(
        "booking:manage", kwargs={"token": manage_token(appointment)}
    )


def can_change_online(appointment, *, now=None, rules=None):
    """Whether the patient may still cancel or move `appointment` themselves."""
    now = now or timezone.now()
    rules = rules or BookingRules.current()
    return appointment.is_active and now <= rules.online_change_closes(appointment.starts_at)


def _check_change_allowed(appointment, now):
    if not appointment.is_active:
        raise SlotUnavailable(_("This appointment is cancelled."))
    if appointment.status != Appointment.Status.CONFIRMED:
        raise TooLateToChange(_("This appointment can no longer be changed online."))
    if not can_change_online(appointment, now=now):
        raise TooLateToChange(
            _("It is too late to change this appointment online. Please call us.")
        )


def cancel_appointment(*, appointment, reason="", by_staff=False, now=None):
    """Cancel `appointment` and tell the patient (with a cancelled .ics) and the clinic.

    Patients may cancel only before the cut-off (TooLateToChange after it); staff at any
    time. Cancelling twice is harmless: the second call changes nothing and sends nothing.
    Returns True if this call cancelled it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if not locked.is_active:
            return False
        if not by_staff:
            _check_change_allowed(locked, now)
        locked.status = Appointment.Status.CANCELLED
        locked.cancelled_at = now
        locked.cancellation_reason = reason[:300]
        locked.sequence += 1
        locked.full_clean(exclude=["submission_key"])
        locked.save()
        _write_change_emails(locked, cancelled=True, by_staff=by_staff, now=now)
    appointment.refresh_from_db()
    return True


def reschedule_appointment(*, appointment, start, now=None):
    """Move `appointment` to `start` with the same therapist and treatment.

    The same guard as booking: the therapist's row locked, the time re-checked from the
    database with this appointment left out, the exclusion constraint behind it. Moving it to
    the time it already has changes nothing (a double-clicked submit). Raises
    TooLateToChange after the cut-off and SlotUnavailable if `start` is not free.
    """
    now = now or timezone.now()
    tz = clinic_zone()
    with transaction.atomic():
        Therapist.objects.select_for_update().filter(pk=appointment.therapist_id).first()
        locked = (
            Appointment.objects.select_for_update()
            .select_related("service", "therapist")
            .get(pk=appointment.pk)
        )
        if locked.is_active and locked.starts_at == start:
            return locked
        _check_change_allowed(locked, now)
        day = start.astimezone(tz).date()
        therapist = Therapist.objects.offering(locked.service).filter(pk=locked.therapist_id)
        free = free_starts(
            service=locked.service,
            therapists=list(therapist),
            first_day=day,
            last_day=day,
            now=now,
            ignoring=locked,
        )
        if start not in set(free.get(locked.therapist_id, ())):
            raise SlotUnavailable(_("Sorry, that time was just taken or is no longer free."))
        locked.starts_at = start
        locked.ends_at = start + locked.service.duration
        locked.blocked_until = locked.ends_at + locked.service.buffer
        locked.scheduled_at = now
        locked.reminded_for = None
        locked.sequence += 1
        locked.full_clean(exclude=["submission_key"])
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            raise SlotUnavailable(
                _("Sorry, that time was just taken or is no longer free.")
            ) from exc
        _write_change_emails(locked, cancelled=False, by_staff=False, now=now)
    return locked


def mark_attendance(*, appointments, status, now=None):
    """Mark confirmed appointments that have begun as completed or no-show; returns them.

    The rows are locked and re-read first, so one cancelled meanwhile is left alone.
    """
    now = now or timezone.now()
    if status not in (Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW):
        raise ValueError(f"Not an attendance status: {status}")
    with transaction.atomic():
        # Locked by id: the admin's queryset may join nullable relations, which PostgreSQL
        # cannot lock.
        eligible = list(
            Appointment.objects.select_for_update().filter(
                pk__in=list(appointments.values_list("pk", flat=True)),
                status=Appointment.Status.CONFIRMED,
                starts_at__lte=now,
            )
        )
        Appointment.objects.filter(pk__in=[a.pk for a in eligible]).update(status=status)
    return eligible


def _clinic_address():
    from clinic.services import get_clinic_profile

    profile = get_clinic_profile()
    return (profile.email if profile else "") or settings.DEFAULT_FROM_EMAIL


def _links(appointment, language):
    """The appointment's confirmation and manage links, to its pages in `language`."""
    with translation.override(language):
        return {
            "confirmation_url": confirmation_url(appointment),
            "manage_url": manage_url(appointment),
        }


def _ics_attachment(appointment, *, sequence=0, cancelled=False):
    """The .ics invitation (or cancellation) in the patient's language (its summary and
    description are read by them), its part labelled with the file's method (RFC 6047)."""
    with translation.override(appointment.language):
        content = appointment_ics(appointment, sequence=sequence, cancelled=cancelled)
    return {
        "filename": "appointment.ics",
        "content": content,
        "mimetype": calendar_mimetype(cancelled=cancelled),
    }


def _write_change_emails(appointment, *, cancelled, by_staff, now):
    """The patient's notice (with the updated or cancelled .ics), in their language, and the
    clinic's, in English. Must run inside the change's transaction.
    """
    context = {
        "appointment": appointment,
        "cancelled": cancelled,
        "by_staff": by_staff,
        "can_change": can_change_online(appointment, now=now),
    }
    key = f"booking:change:{appointment.pk}:{appointment.sequence}"
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/cancelled" if cancelled else "booking/moved",
        context={**context, **_links(appointment, appointment.language)},
        attachments=[
            _ics_attachment(appointment, sequence=appointment.sequence, cancelled=cancelled)
        ],
        idempotency_key=f"{key}:patient",
        language=appointment.language,
    )
    queue_templated_email(
        to=_clinic_address(),
        template="booking/clinic_change",
        context={**context, **_links(appointment, settings.LANGUAGE_CODE)},
        idempotency_key=f"{key}:clinic",
        language=settings.LANGUAGE_CODE,
    )


def _write_confirmation_emails(appointment, *, now):
    """The patient's confirmation (with the .ics), in their language, and the clinic's
    notice, in English, in the outbox.

    Must run inside the booking's transaction, so both commit or roll back together.
    """
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/confirmation",
        context={
            "appointment": appointment,
            "can_change": can_change_online(appointment, now=now),
            **_links(appointment, appointment.language),
        },
        attachments=[_ics_attachment(appointment)],
        language=appointment.language,
    )
    queue_templated_email(
        to=_clinic_address(),
        template="booking/clinic_notice",
        context={"appointment": appointment, **_links(appointment, settings.LANGUAGE_CODE)},
        language=settings.LANGUAGE_CODE,
    )


def validate_not_overlapping(*, appointment):
    """Refuse an appointment that meets another active one of its therapist (buffers counted).

    Must run inside a transaction: it locks the therapist's row first, so no other
    booking for them can slip in between this check and the insert.
    """
    Therapist.objects.select_for_update().filter(pk=appointment.therapist_id).first()
    clash = (
        Appointment.objects.active()
        .overlapping(appointment.therapist_id, appointment.starts_at, appointment.blocked_until)
        .exclude(pk=appointment.pk)
        .first()
    )
    if clash:
        local = timezone.localtime(clash.starts_at)
        raise ValidationError(
            _(
                "%(therapist)s already has %(patient)s at %(when)s "
                "(until %(until)s with the buffer)."
            )
            % {
                "therapist": clash.therapist,
                "patient": clash.patient_name,
                "when": f"{local:%a %b %-d, %H:%M}",
                "until": f"{timezone.localtime(clash.blocked_until):%H:%M}",
            }
        )


# --- Reminders ---------------------------------------------------------------------------
logger = logging.getLogger(__name__)

# A reminder goes out this long before the visit, and only for a time that was set at least
# this long before it: whoever books (or moves) for tomorrow morning has just had an email.
REMINDER_LEAD = timedelta(hours=24)
# The most reminders one run writes; any others wait for the next beat, soonest first.
REMINDER_BATCH = 500


def _claim_reminder(appointment, now):
    """Mark `appointment` reminded for its start; True if this caller now owns the reminder.

    One conditional UPDATE, like the outbox's claim: the database checks "still due, same
    start" and records it in one step, so of two beats, workers or retries racing for one
    appointment exactly one wins. A start moved since `appointment` was read claims nothing
    (the next beat reminds for the new one). Must run in the transaction that writes the email.
    """
    claimed = (
        Appointment.objects.due_for_reminder(now, lead=REMINDER_LEAD)
        .filter(pk=appointment.pk, starts_at=appointment.starts_at)
        .update(reminded_for=F("starts_at"))
    )
    return claimed == 1


def _write_reminder_email(appointment, *, now, rules):
    """The patient's reminder in the outbox, in their language: the visit, the manage link,
    nothing of the intake.

    The template is given named values, not the appointment, so it cannot reach the intake
    answers. Must run inside the transaction that claimed the reminder, so the mark and the
    email commit or roll back together; the idempotency key is a second guard.
    """
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/reminder",
        context={
            "patient_name": appointment.patient_name,
            "starts_at": appointment.starts_at,
            "ends_at": appointment.ends_at,
            "service": appointment.service,
            "therapist": appointment.therapist,
            "manage_url": _links(appointment, appointment.language)["manage_url"],
            "can_change": can_change_online(appointment, now=now, rules=rules),
        },
        idempotency_key=f"booking:reminder:{appointment.pk}:{appointment.starts_at.isoformat()}",
        language=appointment.language,
    )


def _remind(appointment, *, now, rules):
    with transaction.atomic():
        if not _claim_reminder(appointment, now):
            return False
        _write_reminder_email(appointment, now=now, rules=rules)
    return True


def remind_appointment(*, appointment_id, now=None):
    """Write the reminder of one appointment if due (AppointmentQuerySet.due_for_reminder).

    True if this call wrote it; False if it is not due, already reminded for its start,
    claimed by a concurrent call, or the id names no appointment.
    """
    now = now or timezone.now()
    appointment = (
        Appointment.objects.due_for_reminder(now, lead=REMINDER_LEAD)
        .select_related("service", "therapist")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        return False
    return _remind(appointment, now=now, rules=BookingRules.current())


def send_due_reminders(*, now=None):
    """Write the reminder of every appointment due one at `now`; returns how many were written.

    The due appointments are read in one query (service and therapist joined) whatever their
    number; each is then claimed and its email written in its own transaction, so one that
    fails is logged (by id only: no health data in logs) and does not hold back the others.
    Safe to run twice or concurrently: each appointment is reminded once per start time.
    """
    now = now or timezone.now()
    rules = BookingRules.current()
    due = (
        Appointment.objects.due_for_reminder(now, lead=REMINDER_LEAD)
        .select_related("service", "therapist")
        .order_by("starts_at", "pk")[:REMINDER_BATCH]
    )
    written = 0
    for appointment in due:
        try:
            written += _remind(appointment, now=now, rules=rules)
        except Exception:  # one broken row must not stop every reminder after it
            logger.exception("The reminder for appointment %s was not written", appointment.pk)
    return written


# --- Patient data kept short: retention, export and erasure on request --------------------
# What an anonymised appointment keeps: when, what, with whom and how it ended (the clinic's
# records and the schedule's history); nothing that names or reaches the patient. The phone
# is a number reserved for fiction (555-01xx), so the row still passes full_clean.
ANONYMOUS_NAME = "Anonymised"
ANONYMOUS_EMAIL = "anonymised@example.invalid"
ANONYMOUS_PHONE = "+12025550100"
RETENTION_BATCH = 500


class PatientHasUpcomingVisits(Exception):
    """Erasure refused: the patient still has confirmed visits ahead (cancel them first)."""


def months_before(moment, months):
    """`moment` moved back by whole calendar months (the 31st becomes the month's last day)."""
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _scrub_admin_log(ids):
    """The admin's history of these appointments names them by patient, and a staff cancel
    copies its reason there: keep that something happened, drop who and why."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

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
    """Anonymise appointments that started APPOINTMENT_RETENTION_MONTHS ago or more, and
    delete the booking emails sent that long ago (the outbox keeps each one's name, time and
    address); returns (appointments anonymised, emails deleted)."""
    now = now or timezone.now()
    cutoff = months_before(now, settings.APPOINTMENT_RETENTION_MONTHS)
    with transaction.atomic():
        anonymised = _anonymise(Appointment.objects.filter(starts_at__lte=cutoff))
        # Finished booking and sign-up mail only: newsletter copies belong to their issue's
        # delivery record, and an email still waiting to go out is left to go.
        emails, _counts = OutgoingEmail.objects.filter(
            category=OutgoingEmail.Category.TRANSACTIONAL,
            state__in=[OutgoingEmail.State.SENT, OutgoingEmail.State.FAILED],
            created_at__lte=cutoff,
        ).delete()
    return anonymised, emails


def apply_retention(*, now=None):
    """Beat: keep patient data only as long as the settings say. Safe to run twice."""
    now = now or timezone.now()
    intake_cleared = clear_old_intake(now=now)
    anonymised, emails_deleted = anonymise_old_appointments(now=now)
    # Counts only: a log line here must never carry a name, an address or an answer.
    logger.info(
        "Retention: intake cleared on %s, %s appointments anonymised, %s emails deleted",
        intake_cleared,
        anonymised,
        emails_deleted,
    )
    return {
        "intake_cleared": intake_cleared,
        "anonymised": anonymised,
        "emails_deleted": emails_deleted,
    }


def patient_appointments(*, email):
    """The appointments booked with `email` (any case), anonymised ones left out."""
    return Appointment.objects.filter(patient_email__iexact=email.strip()).exclude(
        patient_email=ANONYMOUS_EMAIL
    )


def _patient_emails(email):
    """Finished outbox emails addressed to `email` (the list of recipients is JSON)."""
    email = email.strip().lower()
    finished = OutgoingEmail.objects.filter(
        state__in=[OutgoingEmail.State.SENT, OutgoingEmail.State.FAILED]
    )
    if email.isascii():
        # JSON text holds the address as typed; narrow in SQL, then compare exactly.
        finished = finished.filter(to__icontains=email)
    return [
        each.pk
        for each in finished.only("pk", "to").iterator()
        if any(str(address).strip().lower() == email for address in each.to or ())
    ]


def _isoformat(value):
    return value.isoformat() if value is not None else None


def export_patient_data(*, email):
    """Everything held about the patient with `email`, as a JSON-ready dict: each appointment
    (intake answers included) and their newsletter subscription, if any."""
    from newsletter.models import Subscriber

    appointments = (
        patient_appointments(email=email)
        .select_related("service", "therapist", "source_article")
        .order_by("starts_at", "pk")
    )
    subscriber = Subscriber.objects.filter(email__iexact=email.strip()).first()
    return {
        "email": email.strip(),
        "exported_at": timezone.now().isoformat(),
        "appointments": [
            {
                "starts_at": _isoformat(a.starts_at),
                "ends_at": _isoformat(a.ends_at),
                "service": a.service.name,
                "therapist": a.therapist.name,
                "status": a.status,
                "name": a.patient_name,
                "email": a.patient_email,
                "phone": str(a.patient_phone),
                "notes": a.notes,
                "language": a.language,
                "intake": {name: getattr(a, name) for name in Appointment.INTAKE_FIELDS},
                "agreed_to_cancellation_policy_at": _isoformat(a.consented_to_policy_at),
                "booked_at": _isoformat(a.created_at),
                "cancelled_at": _isoformat(a.cancelled_at),
                "cancellation_reason": a.cancellation_reason,
                "came_from_article": a.source_article.slug if a.source_article else None,
            }
            for a in appointments
        ],
        "newsletter": None
        if subscriber is None
        else {
            "email": subscriber.email,
            "status": subscriber.status,
            "language": subscriber.language,
            "signed_up_at": _isoformat(subscriber.signed_up_at),
            "confirmed_at": _isoformat(subscriber.confirmed_at),
            "unsubscribed_at": _isoformat(subscriber.unsubscribed_at),
            "consent_text": subscriber.consent_text,
            "consent_at": _isoformat(subscriber.consent_at),
            "consent_page": subscriber.consent_page,
            "consent_ip": subscriber.consent_ip,
        },
    }


def upcoming_visits(*, email, now=None):
    """The patient's confirmed appointments that have not started yet."""
    now = now or timezone.now()
    return patient_appointments(email=email).filter(
        status=Appointment.Status.CONFIRMED, starts_at__gt=now
    )


def erase_patient(*, email, now=None):
    """Erase the patient with `email` on their request: anonymise all their appointments,
    remove their newsletter subscription and the emails sent to them.

    Refused (PatientHasUpcomingVisits) while they have a confirmed visit ahead: it would
    stay in the schedule under no name, and its reminder would go nowhere. Staff cancel it
    first. Returns (appointments anonymised, newsletter subscriptions removed, emails deleted).
    """
    from newsletter.models import Subscriber
    from newsletter.services import erase_subscribers

    now = now or timezone.now()
    with transaction.atomic():
        appointments = patient_appointments(email=email).select_for_update()
        list(appointments.values_list("pk", flat=True))  # locked before the check
        if upcoming_visits(email=email, now=now).exists():
            raise PatientHasUpcomingVisits(
                _("This patient has a visit ahead: cancel it before erasing their data.")
            )
        anonymised = _anonymise(appointments)
        # The newsletter's own erasure keeps each issue's figures true and removes the
        # copies it sent.
        unsubscribed = erase_subscribers(
            subscribers=Subscriber.objects.filter(email__iexact=email.strip())
        )
        emails, _counts = OutgoingEmail.objects.filter(pk__in=_patient_emails(email)).delete()
    return anonymised, unsubscribed, emails
