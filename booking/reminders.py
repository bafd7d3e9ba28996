"""Reminders: one email about 24 hours before each confirmed visit, never two.

The claim is the outbox's shape (clinic/mail.py): one conditional UPDATE decides who
writes the reminder, in the transaction that writes the email.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clinic.locking import require_transaction
from clinic.mail import queue_templated_email

from .health import CURRENT, health_history_url, state_for
from .links import links_in
from .models import Appointment, BookingRules
from .services import can_change_online

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
    require_transaction()
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
    require_transaction()
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/reminder",
        context={
            "patient_name": appointment.patient_name,
            "starts_at": appointment.starts_at,
            "ends_at": appointment.ends_at,
            "service": appointment.service,
            "price": appointment.price,
            "therapist": appointment.therapist,
            "therapists": appointment.therapist_names,
            "manage_url": links_in(appointment, appointment.language)["manage_url"],
            "can_change": can_change_online(appointment, now=now, rules=rules),
            **_health_history_due(appointment),
        },
        idempotency_key=f"booking:reminder:{appointment.pk}:{appointment.starts_at.isoformat()}",
        language=appointment.language,
    )


def _health_history_due(appointment):
    """The form's link and why, when the patient's signed history is missing or will be over
    a year old at the visit (booking.health); nothing when it is current. Only the state
    goes in, never an answer."""
    state = state_for(appointment)
    if state == CURRENT:
        return {}
    return {"history_state": state, "health_history_url": health_history_url(appointment)}


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
