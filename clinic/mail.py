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
    subject = render_to_string(f"emails/{template}_subject.txt", context)
    body_text = render_to_string(f"emails/{template}_body.txt", context)
    try:
        body_html = render_to_string(f"emails/{template}_body.html", context)
    except Exception:  # the HTML part is optional
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


def send_outgoing_email(*, email_id):
    """Send one outbox row at most once; returns True if this call sent it.

    Runs its own transaction and holds a row lock (skip_locked) while sending, so
    two workers given the same id cannot both send it: the second finds it locked
    or already sent and does nothing.
    """
    with transaction.atomic():
        email = (
            OutgoingEmail.objects.select_for_update(skip_locked=True)
            .filter(pk=email_id, state=OutgoingEmail.State.PENDING)
            .first()
        )
        if email is None:
            return False
        email.attempts += 1
        email.last_attempt_at = timezone.now()
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
        try:
            message.send()
        except Exception as exc:  # SMTP refusals, timeouts, DNS: keep it for a retry
            email.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            if email.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                email.state = OutgoingEmail.State.FAILED
            email.save(update_fields=["attempts", "last_attempt_at", "last_error", "state"])
            logger.warning("Email %s not sent (attempt %s): %s", email.pk, email.attempts, exc)
            return False
        email.state = OutgoingEmail.State.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        email.save(update_fields=["attempts", "last_attempt_at", "last_error", "state", "sent_at"])
        return True


def retry_delay(attempts):
    """How long an email waits after `attempts` tries: 5, 5, 10, 20… minutes, a day at most."""
    minutes = settings.OUTBOX_REQUEUE_AFTER_MINUTES * 2 ** max(0, attempts - 1)
    return timedelta(minutes=min(minutes, 24 * 60))


def requeue_stale_emails(*, now=None):
    """Queue again each pending email whose wait is over (lost task, failed try); count them."""
    now = now or timezone.now()
    candidates = OutgoingEmail.objects.stale(
        now=now, minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES
    ).values_list("pk", "created_at", "last_attempt_at", "attempts")[:1000]
    due = [
        pk
        for pk, created_at, last_attempt_at, attempts in candidates
        if (last_attempt_at or created_at) + retry_delay(attempts) <= now
    ]
    for email_id in due:
        enqueue_send(email_id)
    return len(due)
