"""Newsletter sign-up with double opt-in: subscribe, confirm, unsubscribe, purge.

Nobody may learn from the site who subscribes: `subscribe` gives the caller nothing to tell
a new address from a known one, and the view answers every sign-up the same way, in the same
time (NEWSLETTER_SIGNUP_SECONDS).
"""

import ipaddress
import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.mail import queue_templated_email

from .models import Subscriber

logger = logging.getLogger(__name__)

CONFIRM_SALT = "newsletter.confirm"
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
CONFIRM_LINK_MAX_AGE = timedelta(days=7)
RESEND_AFTER = timedelta(minutes=10)
PURGE_AFTER = timedelta(days=30)
# The exact words a subscriber agrees to; stored with each sign-up as the consent record.
CONSENT_TEXT = _(
    "Email me the clinic's newsletter: new articles and clinic news, a few times a year. "
    "I can unsubscribe at any time."
)


class BadLink(Exception):
    """A confirm or unsubscribe link that is tampered with or names nobody."""


class ExpiredLink(Exception):
    """A confirm link past its 7 days; `subscriber` may ask for a new one."""

    def __init__(self, subscriber):
        super().__init__("expired")
        self.subscriber = subscriber


def normalise_email(email):
    return email.strip().lower()


def truncate_ip(address):
    """The network, not the person: the last octet (IPv4) or all but /48 (IPv6) zeroed."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def _link_payload(subscriber):
    # The sign-up time is in the link, so a link from before an unsubscribe cannot
    # subscribe the person again when they sign up anew later.
    return {"s": subscriber.pk, "t": int(subscriber.signed_up_at.timestamp())}


def confirm_token(subscriber):
    return signing.dumps(_link_payload(subscriber), salt=CONFIRM_SALT)


def confirm_url(subscriber):
    return settings.SITE_URL + reverse("newsletter:confirm", args=[confirm_token(subscriber)])


def unsubscribe_token(subscriber):
    """Never expires: an unsubscribe link must work in a years-old email."""
    return signing.dumps({"s": subscriber.pk}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(subscriber):
    return settings.SITE_URL + reverse(
        "newsletter:unsubscribe", args=[unsubscribe_token(subscriber)]
    )


def _write_confirmation_email(subscriber, now):
    """Must run in the transaction that records the sign-up."""
    queue_templated_email(
        to=subscriber.email,
        template="newsletter/confirm",
        context={"confirm_url": confirm_url(subscriber), "days": CONFIRM_LINK_MAX_AGE.days},
        idempotency_key=f"newsletter:confirm:{subscriber.pk}:{int(now.timestamp())}",
    )
    subscriber.confirmation_sent_at = now


def subscribe(*, email, page="", ip=None, now=None):
    """Record a sign-up and send the confirmation email when one is due. Returns nothing.

    New address: a pending subscriber and a confirmation email. Pending: the email again,
    at most once every 10 minutes. Unsubscribed: starts over as a new sign-up. Confirmed:
    nothing happens. The consent record is refreshed whenever a confirmation goes out.
    """
    now = now or timezone.now()
    email = normalise_email(email)
    consent = {
        "consent_text": str(CONSENT_TEXT),
        "consent_at": now,
        "consent_page": page[:500],
        "consent_ip": truncate_ip(ip),
    }
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(email=email).first()
        if subscriber is None:
            subscriber = Subscriber(email=email, signed_up_at=now, **consent)
            try:
                with transaction.atomic():
                    subscriber.save()
            except IntegrityError:
                return  # signed up a moment ago by a concurrent request: that one mails
        elif subscriber.status == Subscriber.Status.CONFIRMED:
            return
        elif subscriber.status == Subscriber.Status.UNSUBSCRIBED:
            subscriber.status = Subscriber.Status.PENDING
            subscriber.signed_up_at = now
            subscriber.confirmed_at = None
            subscriber.confirmation_sent_at = None
        elif (
            subscriber.confirmation_sent_at and now - subscriber.confirmation_sent_at < RESEND_AFTER
        ):
            return
        for field, value in consent.items():
            setattr(subscriber, field, value)
        _write_confirmation_email(subscriber, now)
        subscriber.save()


def _subscriber_for(token, *, salt, max_age=None):
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise
    except signing.BadSignature as exc:
        raise BadLink from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise BadLink
    subscriber = Subscriber.objects.filter(pk=payload["s"]).first()
    if subscriber is None:
        raise BadLink
    if "t" in payload and payload["t"] != int(subscriber.signed_up_at.timestamp()):
        raise BadLink  # a link from an earlier sign-up of this address
    return subscriber


def subscriber_for_confirm_link(token):
    """The subscriber a confirm link names. Raises BadLink, or ExpiredLink after 7 days."""
    if len(token) > 300:
        raise BadLink
    try:
        return _subscriber_for(token, salt=CONFIRM_SALT, max_age=CONFIRM_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise ExpiredLink(_subscriber_for(token, salt=CONFIRM_SALT)) from None


def subscriber_for_unsubscribe_link(token):
    if len(token) > 300:
        raise BadLink
    return _subscriber_for(token, salt=UNSUBSCRIBE_SALT)


def confirm_subscription(*, subscriber, now=None):
    """Put a pending subscriber on the list; confirming twice changes nothing.

    An unsubscribed person is not put back by an old link: they sign up again instead.
    Returns True if this call confirmed them.
    """
    now = now or timezone.now()
    updated = Subscriber.objects.filter(pk=subscriber.pk, status=Subscriber.Status.PENDING).update(
        status=Subscriber.Status.CONFIRMED, confirmed_at=now
    )
    subscriber.refresh_from_db()
    return updated == 1


def unsubscribe(*, subscriber, now=None):
    """Take someone off the list at once; unsubscribing twice changes nothing."""
    now = now or timezone.now()
    updated = (
        Subscriber.objects.filter(pk=subscriber.pk)
        .exclude(status=Subscriber.Status.UNSUBSCRIBED)
        .update(status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=now)
    )
    subscriber.refresh_from_db()
    return updated == 1


def resend_confirmation(*, subscriber, now=None):
    """A new confirm link for someone whose link expired (still at most one per 10 minutes).

    Returns True if an email was written.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Subscriber.objects.select_for_update().filter(pk=subscriber.pk).first()
        if locked is None or locked.status != Subscriber.Status.PENDING:
            return False
        if locked.confirmation_sent_at and now - locked.confirmation_sent_at < RESEND_AFTER:
            return False
        _write_confirmation_email(locked, now)
        locked.save(update_fields=["confirmation_sent_at"])
    return True


def purge_unconfirmed(*, now=None):
    """Delete sign-ups never confirmed within 30 days; returns how many."""
    now = now or timezone.now()
    deleted, _ = Subscriber.objects.never_confirmed_since(now - PURGE_AFTER).delete()
    if deleted:
        logger.info("Purged %s unconfirmed newsletter sign-up(s)", deleted)
    return deleted
