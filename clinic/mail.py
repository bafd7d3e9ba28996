"""The outbox every app sends through: queue_email writes a row, a task sends it.

Writing the email in the same transaction as the action that causes it means a
booking and its confirmation commit or roll back together; a broker that is
down when the transaction commits only delays the email (the sweep in
clinic.tasks.requeue_unsent_emails queues it again).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone
from kombu.exceptions import OperationalError

from .models import OutgoingEmail

logger = logging.getLogger(__name__)


def queue_email(*, to, subject, body_text, body_html="", headers=None, attachments=None):
    """Write an email to the outbox and queue its sending once the transaction commits.

    `attachments` is a list of {"filename", "content", "mimetype"} with text content
    (an .ics invitation, say). Returns the OutgoingEmail row.
    """
    email = OutgoingEmail(
        to=[to] if isinstance(to, str) else list(to),
        subject=" ".join(subject.split()),
        body_text=body_text,
        body_html=body_html,
        from_email=settings.DEFAULT_FROM_EMAIL,
        headers=headers or {},
        attachments=attachments or [],
    )
    email.full_clean()
    email.save()
    transaction.on_commit(lambda: enqueue_send(email.pk))
    return email


def queue_templated_email(*, to, template, context, headers=None, attachments=None):
    """Render emails/<template>_subject.txt, _body.txt and (if present) _body.html, then queue."""
    subject = render_to_string(f"emails/{template}_subject.txt", context, using="text")
    body_text = render_to_string(f"emails/{template}_body.txt", context, using="text")
    try:
        body_html = render_to_string(f"emails/{template}_body.html", context)
    except TemplateDoesNotExist:  # the HTML part is optional; a broken one is a bug
        body_html = ""
    return queue_email(
        to=to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        headers=headers,
        attachments=attachments,
    )


def enqueue_send(email_id):
    """Hand one email to the broker; a broker that is down is logged, not raised."""
    from .tasks import send_email_task

    try:
        send_email_task.delay(email_id)
    except (OperationalError, OSError) as exc:
        logger.warning("Broker unavailable, email %s waits for the sweep: %s", email_id, exc)


def _claim(email_id, now):
    """Take one email for sending; True if this caller now owns it.

    One conditional UPDATE: the database locks the row while it checks and changes the
    state, so of two senders racing for the same email exactly one wins. A claim whose
    sender died is free again once its lease has run out.
    """
    claimable = Q(state=OutgoingEmail.State.PENDING) | Q(
        state=OutgoingEmail.State.SENDING,
        last_attempt_at__lte=now - OutgoingEmail.SEND_LEASE,
        attempts__lt=settings.OUTBOX_MAX_ATTEMPTS,
    )
    claimed = OutgoingEmail.objects.filter(claimable, pk=email_id).update(
        state=OutgoingEmail.State.SENDING, attempts=F("attempts") + 1, last_attempt_at=now
    )
    return claimed == 1


def _message(email):
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=email.from_email or settings.DEFAULT_FROM_EMAIL,
        to=email.to,
        headers=email.headers,
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    for attachment in email.attachments:
        message.attach(attachment["filename"], attachment["content"], attachment["mimetype"])
    return message


def send_outgoing_email(*, email_id):
    """Send one outbox row at most once; returns True if this call sent it.

    The row is claimed first and sent outside any transaction, so a slow mail server
    holds no database lock; only the claim's owner may then mark it sent or failed.
    """
    now = timezone.now()
    if not _claim(email_id, now):
        return False
    email = OutgoingEmail.objects.get(pk=email_id)
    ours = OutgoingEmail.objects.filter(
        pk=email_id, state=OutgoingEmail.State.SENDING, last_attempt_at=now
    )
    try:
        _message(email).send()
    except Exception as exc:  # SMTP refusals, timeouts, DNS: keep it for a retry
        gave_up = email.attempts >= settings.OUTBOX_MAX_ATTEMPTS
        ours.update(
            state=OutgoingEmail.State.FAILED if gave_up else OutgoingEmail.State.PENDING,
            last_error=f"{exc.__class__.__name__}: {exc}"[:2000],
        )
        logger.warning("Email %s not sent (attempt %s): %s", email_id, email.attempts, exc)
        return False
    ours.update(state=OutgoingEmail.State.SENT, sent_at=timezone.now(), last_error="")
    return True


def retry_emails(*, emails):
    """Give unsent emails (including ones given up on) a fresh start; returns how many."""
    ids = list(emails.values_list("pk", flat=True))
    unsent = [OutgoingEmail.State.PENDING, OutgoingEmail.State.FAILED]
    with transaction.atomic():
        # Locked and checked again: a row a worker claimed meanwhile is left to that worker.
        restarted = list(
            OutgoingEmail.objects.select_for_update()
            .filter(pk__in=ids, state__in=unsent)
            .values_list("pk", flat=True)
        )
        OutgoingEmail.objects.filter(pk__in=restarted).update(
            state=OutgoingEmail.State.PENDING, attempts=0, last_attempt_at=None, queued_at=None
        )
    for email_id in restarted:
        transaction.on_commit(lambda email_id=email_id: enqueue_send(email_id))
    return len(restarted)


def retry_delay(attempts):
    """How long an email waits after `attempts` tries: 5, 5, 10, 20… minutes, a day at most."""
    minutes = settings.OUTBOX_REQUEUE_AFTER_MINUTES * 2 ** max(0, attempts - 1)
    return timedelta(minutes=min(minutes, 24 * 60))


def requeue_stale_emails(*, now=None):
    """Queue again each email whose wait is over (lost task, failed try); count them.

    Oldest first. A sender that died too often is given up on instead of being retried
    forever; each email queued again is stamped, so the next sweep leaves it alone.
    """
    now = now or timezone.now()
    OutgoingEmail.objects.filter(
        state=OutgoingEmail.State.SENDING,
        last_attempt_at__lte=now - OutgoingEmail.SEND_LEASE,
        attempts__gte=settings.OUTBOX_MAX_ATTEMPTS,
    ).update(
        state=OutgoingEmail.State.FAILED,
        last_error="The sender stopped before finishing (worker died or timed out) too often.",
    )
    candidates = (
        OutgoingEmail.objects.stale(now=now, minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES)
        .order_by("created_at")
        .values_list("pk", "state", "created_at", "last_attempt_at", "attempts")[:1000]
    )
    due = [
        pk
        for pk, state, created_at, last_attempt_at, attempts in candidates
        if state == OutgoingEmail.State.SENDING  # abandoned by a dead worker
        or (last_attempt_at or created_at) + retry_delay(attempts) <= now
    ]
    OutgoingEmail.objects.filter(pk__in=due).update(queued_at=now)
    for email_id in due:
        enqueue_send(email_id)
    return len(due)
