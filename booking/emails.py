"""What the patient and the clinic are told about a booking, written to the outbox.

Every function here must run inside the transaction of the change it tells about, so the
change and its emails commit or roll back together.
"""

from django.conf import settings
from django.utils import translation

from clinic.locking import require_transaction
from clinic.mail import queue_templated_email

from .calendar import appointment_ics, calendar_mimetype
from .health import health_history_url
from .links import leave_waitlist_url, links_in, offer_url


def _clinic_address():
    from clinic.services import get_clinic_profile

    profile = get_clinic_profile()
    return (profile.email if profile else "") or settings.DEFAULT_FROM_EMAIL


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


def write_change_emails(appointment, *, cancelled, by_staff, can_change):
    """The patient's notice (with the updated or cancelled .ics), in their language, and the
    clinic's, in English. `can_change`: whether the patient may still move or cancel it
    online. Must run inside the change's transaction.
    """
    require_transaction()
    context = {
        "appointment": appointment,
        "cancelled": cancelled,
        "by_staff": by_staff,
        "can_change": can_change,
    }
    key = f"booking:change:{appointment.pk}:{appointment.sequence}"
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/cancelled" if cancelled else "booking/moved",
        context={**context, **links_in(appointment, appointment.language)},
        attachments=[
            _ics_attachment(appointment, sequence=appointment.sequence, cancelled=cancelled)
        ],
        idempotency_key=f"{key}:patient",
        language=appointment.language,
    )
    queue_templated_email(
        to=_clinic_address(),
        template="booking/clinic_change",
        context={**context, **links_in(appointment, settings.LANGUAGE_CODE)},
        idempotency_key=f"{key}:clinic",
        language=settings.LANGUAGE_CODE,
    )


def write_confirmation_emails(appointment, *, can_change):
    """The patient's confirmation (with the .ics), in their language, and the clinic's
    notice, in English, in the outbox.

    Must run inside the booking's transaction, so both commit or roll back together.
    """
    require_transaction()
    queue_templated_email(
        to=appointment.patient_email,
        template="booking/confirmation",
        context={
            "appointment": appointment,
            "can_change": can_change,
            "health_history_url": health_history_url(appointment),
            **links_in(appointment, appointment.language),
        },
        attachments=[_ics_attachment(appointment)],
        language=appointment.language,
    )
    queue_templated_email(
        to=_clinic_address(),
        template="booking/clinic_notice",
        context={"appointment": appointment, **links_in(appointment, settings.LANGUAGE_CODE)},
        language=settings.LANGUAGE_CODE,
    )


def write_waitlist_joined_email(entry):
    """The patient's confirmation that they are on the waitlist, in their language, with the
    link to leave it. Must run inside the joining's transaction."""
    require_transaction()
    queue_templated_email(
        to=entry.email,
        template="booking/waitlist_joined",
        context={"entry": entry, "leave_url": leave_waitlist_url(entry)},
        language=entry.language,
    )


def write_waitlist_offer_email(hold, *, shared_with=1):
    """The offer of a freed time to the waitlist entry it is held for, in their language,
    with the link to claim it and the one to leave the list (`shared_with`: how many were
    offered it at once, the first to book winning). Must run inside the hold's
    transaction; its idempotency key is the hold's, so one hold is never offered twice."""
    require_transaction()
    entry = hold.entry
    queue_templated_email(
        to=entry.email,
        template="booking/waitlist_offer",
        context={
            "entry": entry,
            "hold": hold,
            "offer_url": offer_url(hold),
            "shared_with": shared_with,
            "leave_url": leave_waitlist_url(entry),
        },
        idempotency_key=f"booking:waitlist-offer:{hold.pk}",
        language=entry.language,
    )
