"""The patient's private links: the confirmation page and the signed manage link."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone, translation

from .models import Appointment


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


def links_in(appointment, language):
    """The appointment's confirmation and manage links, to its pages in `language`."""
    with translation.override(language):
        return {
            "confirmation_url": confirmation_url(appointment),
            "manage_url": manage_url(appointment),
        }


LEAVE_WAITLIST_SALT = "booking.waitlist.leave"


def leave_waitlist_token(entry):
    """A signed token for an entry's "leave the list" link (no login, tamper-proof)."""
    return signing.dumps(entry.pk, salt=LEAVE_WAITLIST_SALT)


def waitlist_entry_for_token(token):
    """The waitlist entry a leave token names, or None for a wrong or tampered token."""
    from .models import WaitlistEntry

    if len(token) > 200:
        return None
    try:
        pk = signing.loads(token, salt=LEAVE_WAITLIST_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(pk, int):
        return None
    return WaitlistEntry.objects.select_related("service", "therapist").filter(pk=pk).first()


def leave_waitlist_url(entry):
    """The entry's leave link, to the page in the entry's language."""
    with translation.override(entry.language):
        return settings.SITE_URL + reverse(
            "booking:leave_waitlist", kwargs={"token": leave_waitlist_token(entry)}
        )


OFFER_SALT = "booking.waitlist.offer"


def offer_token(hold):
    """A signed token for a waitlist offer's link: only the one offered can claim the hold."""
    return signing.dumps(hold.pk, salt=OFFER_SALT)


def hold_for_token(token):
    """The Hold an offer token names (in any state), or None for a wrong or tampered one."""
    from .models import Hold

    if not token or len(token) > 200:
        return None
    try:
        pk = signing.loads(token, salt=OFFER_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(pk, int):
        return None
    return Hold.objects.select_related("entry", "service", "therapist").filter(pk=pk).first()


def offer_url(hold):
    """The offer's link, to the page in the entry's language."""
    with translation.override(hold.entry.language):
        return settings.SITE_URL + reverse(
            "booking:waitlist_offer", kwargs={"token": offer_token(hold)}
        )
