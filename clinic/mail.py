"""The outbox every app sends through: queue_email writes a row, a task sends it.

Two words, used the same way everywhere: an email is *written* when its row goes into
the outbox table, and *published* when its send task is handed to the broker.
Writing the email in the same transaction as the action that causes it means a
booking and its confirmation commit or roll back together; publishing happens after
commit, and a broker that is down then only delays the email: the beat sweep
(republish_due_emails) republishes every email whose wait is over.
"""

import logging
import threading
import time
from datetime import timedelta
from email.header import Header

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation
from kombu.exceptions import OperationalError

from .locking import lock, require_transaction
from .models import OutgoingEmail, send_lease

logger = logging.getLogger(__name__)

Category = OutgoingEmail.Category

# The most emails one sweep republishes; the rest wait for the next beat.
REPUBLISH_BATCH = 1000


def queue_email(
    *,
    to,
    subject,
    body_text,
    body_html="",
    headers=None,
    attachments=None,
    category=Category.TRANSACTIONAL,
    idempotency_key=None,
):
    """Write an email to the outbox; it is published to the broker once the transaction commits.

    `attachments` is a list of {"filename", "content", "mimetype"} with text content
    (an .ics invitation, say). `category` is TRANSACTIONAL (the default) or BULK
    (newsletters, sent from their own queue). With an `idempotency_key` (e.g.
    "booking:reminder:<id>:<start iso>") the email is written at most once: a second
    call, even a concurrent one, writes nothing and returns the first row.
    Returns the OutgoingEmail row.
    """
    idempotency_key = idempotency_key or None
    if idempotency_key:
        existing = OutgoingEmail.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    now = timezone.now()
    email = OutgoingEmail(
        to=[to] if isinstance(to, str) else list(to),
        subject=" ".join(subject.split()),
        body_text=body_text,
        body_html=body_html,
        from_email=settings.DEFAULT_FROM_EMAIL,
        headers=headers or {},
        attachments=attachments or [],
        category=category,
        idempotency_key=idempotency_key,
        created_at=now,
        next_attempt_at=now + timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES),
    )
    # The unique constraint decides between racing writers, not a query before it.
    email.full_clean(validate_unique=False)
    try:
        # A savepoint: a lost race undoes only this insert, not the caller's transaction.
        with transaction.atomic():
            email.save()
    except IntegrityError:
        if idempotency_key is None:
            raise
        existing = OutgoingEmail.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    transaction.on_commit(lambda: publish_send(email.pk, category=email.category))
    return email


def queue_templated_email(
    *,
    to,
    template,
    context,
    headers=None,
    attachments=None,
    category=Category.TRANSACTIONAL,
    idempotency_key=None,
    language=None,
):
    """Render emails/<template>_subject.txt, _body.txt and (if present) _body.html, then write.

    Templates always see `clinic` (the profile) and `site_url` (for absolute links), and the
    HTML sees the rendered `subject` for its <title>;
    the caller's context wins where it names the same key. `language` ("en", "es") is the
    reader's: the email is rendered in it, whatever language the sender's request is in
    (None: the active one). Make the links in `context` under
    translation.override(language) too, so they lead to pages in that language.
    """
    from .services import get_clinic_profile

    context = {"clinic": get_clinic_profile(), "site_url": settings.SITE_URL, **context}
    with translation.override(language or translation.get_language()):
        subject = render_to_string(f"emails/{template}_subject.txt", context, using="text")
        subject = " ".join(subject.split())
        body_text = render_to_string(f"emails/{template}_body.txt", context, using="text")
        try:
            # The HTML's <title> is the subject (mail apps show it; screen readers read it).
            html_context = {"subject": subject, **context}
            body_html = render_to_string(f"emails/{template}_body.html", html_context)
        except TemplateDoesNotExist:  # the HTML part is optional; a broken one is a bug
            body_html = ""
    return queue_email(
        to=to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        headers=headers,
        attachments=attachments,
        category=category,
        idempotency_key=idempotency_key,
    )


def write_bulk_emails(emails):
    """Write many bulk emails (newsletter copies) in one INSERT; returns the saved rows.

    `emails` is a list of dicts with queue_email's keys: to, subject, body_text, and
    optionally body_html, headers and idempotency_key. Meant for rows built by code from
    checked data (a newsletter's fan-out), so there is no full_clean per row; the subject
    is still folded to one line, as queue_email does. Must run inside the caller's
    transaction, under whatever lock makes its idempotency keys new: a repeated key raises
    IntegrityError and the whole batch rolls back (nothing half-written). Every row is
    published to the bulk queue once the transaction commits.
    """
    require_transaction()
    now = timezone.now()
    grace = now + timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES)
    rows = OutgoingEmail.objects.bulk_create(
        OutgoingEmail(
            to=[email["to"]] if isinstance(email["to"], str) else list(email["to"]),
            subject=" ".join(email["subject"].split()),
            body_text=email["body_text"],
            body_html=email.get("body_html", ""),
            from_email=settings.DEFAULT_FROM_EMAIL,
            headers=email.get("headers") or {},
            category=Category.BULK,
            idempotency_key=email.get("idempotency_key") or None,
            created_at=now,
            next_attempt_at=grace,
        )
        for email in emails
    )
    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: publish_sends(ids, category=Category.BULK))
    return rows


def publish_sends(email_ids, *, category=Category.BULK):
    """Publish many emails' send tasks over one broker connection; a broker that is down is
    logged once and the rest are left to the sweep (their rows wait for it already)."""
    from .tasks import send_email_task

    queue = send_email_task.app.conf.bulk_queue if category == Category.BULK else None
    try:
        with send_email_task.app.producer_or_acquire() as producer:
            for email_id in email_ids:
                send_email_task.apply_async(args=[email_id], queue=queue, producer=producer)
    except (OperationalError, OSError) as exc:
        logger.warning("Broker unavailable, %s emails wait for the sweep: %s", len(email_ids), exc)


def publish_send(email_id, *, category=Category.TRANSACTIONAL):
    """Publish one email's send task; a broker that is down is logged, not raised.

    Bulk mail goes to the bulk queue (settings.CELERY_BULK_QUEUE, which the Celery app
    reads as `bulk_queue`), everything else to the default queue, so a newsletter run
    never stands in front of a booking confirmation.
    """
    from .tasks import send_email_task

    queue = send_email_task.app.conf.bulk_queue if category == Category.BULK else None
    try:
        send_email_task.apply_async(args=[email_id], queue=queue)
    except (OperationalError, OSError) as exc:
        logger.warning("Broker unavailable, email %s waits for the sweep: %s", email_id, exc)


def _claim(email_id, now):
    """Take one email for sending; True if this caller now owns it.

    One conditional UPDATE: the database locks the row while it checks and changes the
    state, so of two senders racing for the same email exactly one wins. The claim's time
    (last_attempt_at) is its fencing token: only its holder may renew the lease, or mark
    the email sent or failed. A claim whose sender died is free again once its lease has
    run out unrenewed; until then the sweep leaves the email alone (next_attempt_at).
    """
    lease_end = now + send_lease()
    claimed = (
        OutgoingEmail.objects.claimable(now=now)
        .filter(pk=email_id)
        .update(
            state=OutgoingEmail.State.SENDING,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            lease_expires_at=lease_end,
            next_attempt_at=lease_end,
        )
    )
    return claimed == 1


class _EmailMessage(EmailMultiAlternatives):
    """Django's message with a Subject that folds after its name, not before its text.

    Django encodes a non-ASCII subject without knowing the "Subject: " before it; the
    generator then moves the first encoded word to the next line, and readers decode the
    subject with a leading space. A Header told its name folds it where it fits.
    """

    def message(self, *args, **kwargs):
        msg = super().message(*args, **kwargs)
        charset = None if self.subject.isascii() else self.encoding or settings.DEFAULT_CHARSET
        msg.replace_header("Subject", Header(self.subject, charset, header_name="Subject"))
        return msg


def _renew_lease(claim):
    """Extend a claim's lease (`claim`: the row, as still held); False if it is held no more."""
    lease_end = timezone.now() + send_lease()
    return claim.update(lease_expires_at=lease_end, next_attempt_at=lease_end) == 1


class _LeaseKeeper:
    """While a send is in progress, renew its lease every third of it, from a thread.

    A slow mail server then never makes a live sender look dead, while a sender that
    really died (kill -9, a machine lost) stops renewing and its email is free again
    within one lease, not ten minutes. The thread has its own database connection.
    It naps in short relative sleeps rather than waiting on an Event with a timeout (whose
    deadline a faked clock, as under `make test-dates`, can push out for ever), and is not
    joined: it sees the stop within one nap, and a renewal after the send finished changes
    nothing (it is fenced on the claim, no longer "sending").
    """

    NAP_SECONDS = 0.05

    def __init__(self, claim):
        self.claim = claim
        self.lost = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="outbox-lease", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopped = True

    def _run(self):
        interval = settings.OUTBOX_SEND_LEASE_SECONDS / 3
        renew_at = time.monotonic() + interval
        try:
            while not self._stopped:
                time.sleep(min(self.NAP_SECONDS, max(0.0, renew_at - time.monotonic())))
                if self._stopped or time.monotonic() < renew_at:
                    continue
                renew_at = time.monotonic() + interval
                try:
                    if not _renew_lease(self.claim):
                        self.lost = True
                        return
                except Exception:  # noqa: BLE001  # a blip: the next beat tries again
                    logger.warning("Could not renew an email's send lease", exc_info=True)
        finally:
            connection.close()


def _message(email):
    # The row's own Message-ID on every try: a copy resent after a crash is recognisably
    # the same email to mail servers and clients, which drop or thread the duplicate.
    message = _EmailMessage(
        subject=email.subject,
        body=email.body_text,
        from_email=email.from_email or settings.DEFAULT_FROM_EMAIL,
        to=email.to,
        headers={**email.headers, **({"Message-ID": email.message_id} if email.message_id else {})},
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    for attachment in email.attachments:
        message.attach(attachment["filename"], attachment["content"], attachment["mimetype"])
    return message


def send_outgoing_email(*, email_id):
    """Send one outbox row; returns True if this call sent it.

    The row is claimed first and sent outside any transaction, so a slow mail server
    holds no database lock; the claim's lease is renewed while the send goes on, and only
    the claim's owner may then mark it sent or failed. SMTP cannot promise exactly once:
    a sender killed after the server took the message but before it was marked sent
    leaves it to be sent again once the lease runs out, with the same Message-ID.
    """
    now = timezone.now()
    if not _claim(email_id, now):
        return False
    email = OutgoingEmail.objects.get(pk=email_id)
    ours = OutgoingEmail.objects.filter(
        pk=email_id, state=OutgoingEmail.State.SENDING, last_attempt_at=now
    )
    try:
        with _LeaseKeeper(ours) as keeper:
            _message(email).send()
    except Exception as exc:  # SMTP refusals, timeouts, DNS: keep it for a retry
        gave_up = email.attempts >= settings.OUTBOX_MAX_ATTEMPTS
        ours.update(
            state=OutgoingEmail.State.FAILED if gave_up else OutgoingEmail.State.PENDING,
            last_error=f"{exc.__class__.__name__}: {exc}"[:2000],
            next_attempt_at=timezone.now() + retry_delay(email.attempts),
            lease_expires_at=None,
        )
        logger.warning("Email %s not sent (attempt %s): %s", email_id, email.attempts, exc)
        return False
    if not ours.update(
        state=OutgoingEmail.State.SENT, sent_at=timezone.now(), last_error="", lease_expires_at=None
    ):
        # The lease ran out mid-send (the database was unreachable to renew it): another
        # sender may have sent it again meanwhile, with the same Message-ID.
        logger.warning("Email %s sent after its lease was lost (lost=%s)", email_id, keeper.lost)
    return True


def retry_emails(*, emails):
    """Give unsent emails (including ones given up on) a fresh start; returns how many."""
    ids = list(emails.values_list("pk", flat=True))
    unsent = [OutgoingEmail.State.PENDING, OutgoingEmail.State.FAILED]
    now = timezone.now()
    with transaction.atomic():
        # Locked and checked again: a row a worker claimed meanwhile is left to that worker.
        restarted = lock(
            OutgoingEmail.objects.filter(pk__in=ids, state__in=unsent).values_list("pk", "category")
        )
        OutgoingEmail.objects.filter(pk__in=[pk for pk, _ in restarted]).update(
            state=OutgoingEmail.State.PENDING,
            attempts=0,
            last_attempt_at=None,
            lease_expires_at=None,
            queued_at=None,
            next_attempt_at=now + timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES),
        )
    for email_id, category in restarted:
        transaction.on_commit(
            lambda email_id=email_id, category=category: publish_send(email_id, category=category)
        )
    return len(restarted)


def retry_delay(attempts):
    """How long an email waits after `attempts` failed tries: 5, 10, 20… minutes, a day at most."""
    minutes = settings.OUTBOX_REQUEUE_AFTER_MINUTES * 2 ** max(0, attempts - 1)
    return timedelta(minutes=min(minutes, 24 * 60))


def republish_due_emails(*, now=None):
    """Republish each email whose wait is over (lost task, failed try, dead sender); count them.

    The database picks them (OutgoingEmail.objects.due), transactional mail first, at most
    REPUBLISH_BATCH per run, so an email in a long back-off never holds up a due one.
    A sender that died too often is given up on instead of being retried forever. Each
    email republished waits a grace period again, so the next beat leaves it alone.
    """
    now = now or timezone.now()
    OutgoingEmail.objects.abandoned(now=now).filter(
        attempts__gte=settings.OUTBOX_MAX_ATTEMPTS
    ).update(
        state=OutgoingEmail.State.FAILED,
        last_error="The sender stopped before finishing (worker died or timed out) too often.",
    )
    due = list(
        OutgoingEmail.objects.due(now=now)
        .transactional_first()
        .values_list("pk", "category")[:REPUBLISH_BATCH]
    )
    OutgoingEmail.objects.filter(pk__in=[pk for pk, _ in due]).update(
        queued_at=now,
        next_attempt_at=now + timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES),
    )
    for email_id, category in due:
        publish_send(email_id, category=category)
    return len(due)
