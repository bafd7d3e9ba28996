"""Booking: book a free time, cancel it, move it; staff's attendance marks and clash check.

Each write owns its transaction and re-checks what is free under a lock on the therapist's
row (booking/availability.py reads it from the database, never a cache); the patient's and
the clinic's emails are written in the same transaction (booking/emails.py).
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.locking import lock

from . import availability
from .emails import write_change_emails, write_confirmation_emails, write_waitlist_joined_email
from .models import Appointment, BookingRules, Service, Therapist, WaitlistEntry


class SlotUnavailable(Exception):
    """The time asked for is not free (any more), or cannot be booked online."""


@dataclass(frozen=True)
class PatientDetails:
    """Who is booking, as they typed it (there is no patient record: each appointment keeps
    its own copy)."""

    name: str
    email: str
    phone: str
    notes: str = ""
    # Intake answers (True, False, or None when not asked): health data, staff eyes only.
    intake: dict = field(default_factory=dict)


class TooLateToChange(Exception):
    """The cut-off for changing or cancelling online has passed."""


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
    tz = timezone.get_default_timezone()
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
        candidates = lock(candidates)
        if submission_key:
            # Again under the lock: an identical submit that held it first has committed by
            # now, and its patient must get that booking, not "that time was just taken".
            earlier = Appointment.objects.filter(submission_key=submission_key).first()
            if earlier:
                return earlier
        if not candidates:
            raise SlotUnavailable(_("That therapist does not offer this service online."))
        day = start.astimezone(tz).date()
        free = availability.free_starts(
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
            # Decided by what is stored, not by the error's wording: a concurrent submit of
            # the same form committed first (its row is visible once our insert fails).
            earlier = submission_key and (
                Appointment.objects.filter(submission_key=submission_key).first()
            )
            if earlier:
                return earlier
            raise SlotUnavailable(
                _("Sorry, that time was just taken or is no longer free.")
            ) from exc
        write_confirmation_emails(appointment, can_change=can_change_online(appointment, now=now))
    return appointment


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
        (locked,) = lock(Appointment.objects.filter(pk=appointment.pk))
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
        write_change_emails(
            locked,
            cancelled=True,
            by_staff=by_staff,
            can_change=can_change_online(locked, now=now),
        )
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
    tz = timezone.get_default_timezone()
    with transaction.atomic():
        lock(Therapist.objects.filter(pk=appointment.therapist_id))
        (locked,) = lock(
            Appointment.objects.select_related("service", "therapist").filter(pk=appointment.pk)
        )
        if locked.is_active and locked.starts_at == start:
            return locked
        _check_change_allowed(locked, now)
        day = start.astimezone(tz).date()
        therapist = Therapist.objects.offering(locked.service).filter(pk=locked.therapist_id)
        free = availability.free_starts(
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
        write_change_emails(
            locked,
            cancelled=False,
            by_staff=False,
            can_change=can_change_online(locked, now=now),
        )
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
        eligible = lock(
            Appointment.objects.filter(
                pk__in=list(appointments.values_list("pk", flat=True)),
                status=Appointment.Status.CONFIRMED,
                starts_at__lte=now,
            )
        )
        Appointment.objects.filter(pk__in=[a.pk for a in eligible]).update(status=status)
    return eligible


def validate_not_overlapping(*, appointment):
    """Refuse an appointment that meets another active one of its therapist (buffers counted).

    Must run inside a transaction (clinic.locking enforces it): it locks the therapist's row
    first, so no other booking for them can slip in between this check and the insert.
    """
    lock(Therapist.objects.filter(pk=appointment.therapist_id))
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


def join_waitlist(
    *, service, therapist, first_day, last_day, parts, name, email, phone, language, now=None
):
    """Put a patient on the waitlist and queue their confirmation email; returns the entry.

    The same person asking again for the same treatment and therapist updates their waiting
    entry (keeping their place in line) instead of adding a second one, and is sent the same
    confirmation, so the answer says nothing about whether the address was already listed.
    """
    now = now or timezone.now()
    parts = set(parts)
    with transaction.atomic():
        existing = lock(
            WaitlistEntry.objects.waiting()
            .for_email(email)
            .filter(service=service, therapist=therapist)
            .order_by("joined_at", "pk")[:1]
        )
        entry = existing[0] if existing else WaitlistEntry(service=service, therapist=therapist)
        entry.first_day, entry.last_day = first_day, last_day
        entry.morning, entry.afternoon, entry.evening = (
            part in parts for part in ("morning", "afternoon", "evening")
        )
        entry.name, entry.email, entry.phone, entry.language = name, email, phone, language
        if entry.pk is None:
            entry.joined_at = now
        entry.full_clean()
        entry.save()
        write_waitlist_joined_email(entry)
    return entry


def leave_waitlist(*, entry):
    """Take an entry off the waitlist (its patient's link, or staff); safe to run twice."""
    with transaction.atomic():
        WaitlistEntry.objects.filter(pk=entry.pk, state=WaitlistEntry.State.WAITING).update(
            state=WaitlistEntry.State.LEFT
        )
