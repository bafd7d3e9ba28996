"""Newsletter sign-up with double opt-in: subscribe, confirm, unsubscribe, purge.

Nobody may learn from the site who subscribes: `subscribe` gives the caller nothing to tell
a new address from a known one, and the view answers every sign-up the same way, in the same
time (NEWSLETTER_SIGNUP_SECONDS).
"""

import csv
import ipaddress
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from articles.models import Article
from articles.rendering import render_markdown
from clinic.i18n import field_name, translated, translated_languages
from clinic.locking import lock, require_transaction
from clinic.mail import queue_email, queue_templated_email, write_bulk_emails
from clinic.models import OutgoingEmail

from .models import Delivery, NewsletterIssue, Subscriber

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
    """The confirm page in the subscriber's language."""
    with translation.override(subscriber.language):
        return settings.SITE_URL + reverse("newsletter:confirm", args=[confirm_token(subscriber)])


def unsubscribe_token(subscriber):
    """Never expires: an unsubscribe link must work in a years-old email.

    Signed without a timestamp, so a person's link is the same in every email (and in the
    List-Unsubscribe header) however often it is made.
    """
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"s": subscriber.pk})


def unsubscribe_url(subscriber):
    """The unsubscribe page in the subscriber's language."""
    with translation.override(subscriber.language):
        return settings.SITE_URL + reverse(
            "newsletter:unsubscribe", args=[unsubscribe_token(subscriber)]
        )


def _write_confirmation_email(subscriber, now):
    """In the subscriber's language. Must run in the transaction that records the sign-up
    (queue_templated_email writes in the caller's transaction)."""
    require_transaction()
    queue_templated_email(
        to=subscriber.email,
        template="newsletter/confirm",
        context={"confirm_url": confirm_url(subscriber), "days": CONFIRM_LINK_MAX_AGE.days},
        idempotency_key=f"newsletter:confirm:{subscriber.pk}:{int(now.timestamp())}",
        language=subscriber.language,
    )
    subscriber.confirmation_sent_at = now


def subscribe(*, email, page="", ip=None, language=None, now=None):
    """Record a sign-up and send the confirmation email when one is due. Returns nothing.

    New address: a pending subscriber and a confirmation email. Pending: the email again,
    at most once every 10 minutes. Unsubscribed: starts over as a new sign-up. Confirmed:
    nothing happens. The consent record is refreshed whenever a confirmation goes out.
    `language` is the sign-up page's (default English): the confirmation and the issues
    come in it; a sign-up again in the other language switches it.
    """
    now = now or timezone.now()
    email = normalise_email(email)
    consent = {
        "consent_text": str(CONSENT_TEXT),
        "consent_at": now,
        "consent_page": page[:500],
        "consent_ip": truncate_ip(ip),
        "language": language or settings.LANGUAGE_CODE,
    }
    with transaction.atomic():
        subscriber = next(iter(lock(Subscriber.objects.filter(email=email))), None)
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


def _subscriber_for(token, *, salt, max_age=None, timestamped=True):
    try:
        if timestamped:
            payload = signing.loads(token, salt=salt, max_age=max_age)
        else:
            payload = signing.Signer(salt=salt).unsign_object(token)
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
    return _subscriber_for(token, salt=UNSUBSCRIBE_SALT, timestamped=False)


def confirm_subscription(*, subscriber, now=None):
    """Put a pending subscriber on the list; confirming twice changes nothing.

    An unsubscribed person is not put back by an old link: they sign up again instead.
    Returns True if this call confirmed them.
    """
    from clinic.models import Patient

    now = now or timezone.now()
    # Confirming proves the address: its verified patient record (if any) gets the link.
    patient = Patient.objects.verified().for_email(subscriber.email).first()
    updated = Subscriber.objects.filter(pk=subscriber.pk, status=Subscriber.Status.PENDING).update(
        status=Subscriber.Status.CONFIRMED, confirmed_at=now, patient=patient
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
        locked = next(iter(lock(Subscriber.objects.filter(pk=subscriber.pk))), None)
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
    # Through erase: someone who once received issues keeps counting in them.
    deleted = erase_subscribers(
        subscribers=Subscriber.objects.never_confirmed_since(now - PURGE_AFTER)
    )
    if deleted:
        logger.info("Purged %s unconfirmed newsletter sign-up(s)", deleted)
    return deleted


# --- Issues (campaigns): write, preview, test, fan out, erase -----------------------------
# Subscribers written per transaction: one INSERT of outbox rows and one of deliveries each.
FAN_OUT_BATCH = 500
# A fan-out task hands over to a fresh one after this long, well inside its time limit.
FAN_OUT_SECONDS = 20
# Stands in for each subscriber's own unsubscribe link while an issue is rendered once.
_UNSUBSCRIBE_MARK = "https://unsubscribe.invalid/newsletter-mark"
# Cells a spreadsheet would run as a formula (CSV injection); prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class IssueNotDraft(Exception):
    """The issue is being sent or was sent: it can no longer change or be sent again."""


def save_issue(*, issue):
    """Validate and save a draft issue, rendering its Markdown once (sanitised as articles are).

    Raises IssueNotDraft once sending has started: every subscriber gets the same text.
    """
    with transaction.atomic():
        if issue.pk:
            stored = next(iter(lock(NewsletterIssue.objects.filter(pk=issue.pk))), None)
            if stored is not None and not stored.is_draft:
                raise IssueNotDraft
        for language in [settings.LANGUAGE_CODE, *translated_languages(issue, "body_html")]:
            body = getattr(issue, field_name("body", language))
            html = render_markdown(body) if body.strip() else ""
            setattr(issue, field_name("body_html", language), html)
        issue.full_clean()
        issue.save()
    return issue


def _absolute_links(html):
    # Links staff write as /book/ must work from a mail client too.
    return html.replace('href="/', f'href="{settings.SITE_URL}/')


def _render_issue(issue, language=None):
    """The issue's subject, text and HTML in `language`, with a mark for the unsubscribe link.

    A language the issue was written in uses that version; any other gets the original.
    """
    language = language or settings.LANGUAGE_CODE
    if not issue.has_version(language):
        language = settings.LANGUAGE_CODE
    with translation.override(language):
        return _render_issue_in_active_language(issue, language)


def _render_issue_versions(issue):
    """The issue rendered once per language, keyed by language code (the fan-out's copy)."""
    return {code: _render_issue(issue, code) for code, _name in settings.LANGUAGES}


def _render_issue_in_active_language(issue, language):
    from clinic.services import get_clinic_profile

    articles = [
        {
            "title": article.title,
            "summary": article.summary,
            "url": settings.SITE_URL + article.get_absolute_url(),
            "published_at": article.published_at,
            "reading_minutes": article.reading_minutes,
        }
        for article in issue.featured_articles.published().order_by("-published_at")
    ]
    context = {
        "clinic": get_clinic_profile(),
        "site_url": settings.SITE_URL,
        "issue": issue,
        "subject": translated(issue, "subject", language),
        "body": translated(issue, "body", language),
        "body_html": _absolute_links(translated(issue, "body_html", language)),
        "articles": articles,
        "unsubscribe_url": _UNSUBSCRIBE_MARK,
    }
    template = "emails/newsletter/issue"
    return {
        "subject": render_to_string(f"{template}_subject.txt", context, using="text"),
        "body_text": render_to_string(f"{template}_body.txt", context, using="text"),
        "body_html": render_to_string(f"{template}_body.html", context),
    }


def _personalised(rendered, link):
    """One subscriber's copy: the rendered issue with their own unsubscribe link."""
    return {
        "subject": " ".join(rendered["subject"].split()),
        "body_text": rendered["body_text"].replace(_UNSUBSCRIBE_MARK, link),
        "body_html": rendered["body_html"].replace(_UNSUBSCRIBE_MARK, escape(link)),
    }


def unsubscribe_headers(link):
    """RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs to `link`."""
    return {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def preview_issue(*, issue, language=None):
    """The issue as a subscriber reading `language` will receive it: subject, text and HTML.

    The unsubscribe link points at the newsletter's page: a preview has no subscriber.
    """
    language = language or settings.LANGUAGE_CODE
    with translation.override(language):
        signup = settings.SITE_URL + reverse("newsletter:signup")
    return _personalised(_render_issue(issue, language), signup)


def send_test_issue(*, issue, to):
    """Email one copy of the issue to `to` (a staff member), on the transactional queue.

    Allowed in any status; the subject says it is a test, and it has no List-Unsubscribe
    header: there is nobody to unsubscribe.
    """
    copy = preview_issue(issue=issue)
    with transaction.atomic():
        return queue_email(
            to=to,
            subject=f"[{_('Test')}] {copy['subject']}",
            body_text=copy["body_text"],
            body_html=copy["body_html"],
        )


def start_sending_issue(*, issue, now=None):
    """Start sending a draft to every confirmed subscriber; the fan-out task runs after commit.

    One conditional UPDATE moves it from draft to sending, so a double-clicked button starts
    one send. Also resumes an issue still sending (a fan-out lost with its broker or
    worker): safe, since nobody is written twice. Returns False for an issue already sent.
    """
    from .tasks import fan_out_issue_task

    now = now or timezone.now()
    with transaction.atomic():
        NewsletterIssue.objects.filter(pk=issue.pk, status=NewsletterIssue.Status.DRAFT).update(
            status=NewsletterIssue.Status.SENDING, sending_started_at=now
        )
        issue.refresh_from_db()
        if issue.status != NewsletterIssue.Status.SENDING:
            return False
        transaction.on_commit(lambda: publish_fan_out(fan_out_issue_task, issue.pk))
    return True


def publish_fan_out(task, issue_id):
    """Publish the fan-out of an issue on the bulk queue; a broker that is down is logged
    (staff see the issue still sending and press Send again)."""
    from kombu.exceptions import OperationalError as BrokerDown

    try:
        task.apply_async(args=[issue_id], queue=task.app.conf.bulk_queue)
    except (BrokerDown, OSError) as exc:
        logger.warning("Broker unavailable, issue %s is not fanning out: %s", issue_id, exc)


def send_issue_batch(*, issue_id, batch_size=FAN_OUT_BATCH, rendered=None, now=None):
    """Write the next batch of an issue's copies; returns how many (0 when none are left).

    Runs its own transaction under a lock on the issue, so two fan-outs of one issue (a
    retried task, a resumed send) take turns and never pick the same subscribers. The
    subscribers are read, and locked, inside it: someone who unsubscribed a moment ago is
    no longer confirmed and is skipped. Each copy is one Delivery (unique per issue and
    subscriber) and one outbox row (its idempotency key says the same), written together;
    the send tasks are published after commit. The last, empty batch marks the issue sent.
    """
    now = now or timezone.now()
    with transaction.atomic():
        issue = next(iter(lock(NewsletterIssue.objects.filter(pk=issue_id))), None)
        if issue is None or issue.status != NewsletterIssue.Status.SENDING:
            return 0
        already = Delivery.objects.filter(issue=issue, subscriber=OuterRef("pk"))
        subscribers = lock(
            Subscriber.objects.confirmed().filter(~Exists(already)).order_by("pk")[:batch_size]
        )
        if not subscribers:
            NewsletterIssue.objects.filter(pk=issue.pk).update(
                status=NewsletterIssue.Status.SENT, sent_at=now
            )
            return 0
        rendered = rendered or _render_issue_versions(issue)
        english = rendered[settings.LANGUAGE_CODE]
        copies = []
        for subscriber in subscribers:
            link = unsubscribe_url(subscriber)
            copies.append(
                {
                    "to": subscriber.email,
                    **_personalised(rendered.get(subscriber.language, english), link),
                    "headers": unsubscribe_headers(link),
                    "idempotency_key": f"newsletter:issue:{issue.pk}:{subscriber.pk}",
                }
            )
        emails = write_bulk_emails(copies)
        Delivery.objects.bulk_create(
            Delivery(issue=issue, subscriber=subscriber, email=email, created_at=now)
            for subscriber, email in zip(subscribers, emails, strict=True)
        )
    return len(subscribers)


def fan_out_issue(*, issue_id, seconds=FAN_OUT_SECONDS, batch_size=FAN_OUT_BATCH):
    """Write batches of an issue's copies for up to `seconds`; True once every copy is written.

    Safe to run twice, or concurrently: each batch takes the subscribers still without a copy.
    """
    issue = NewsletterIssue.objects.filter(pk=issue_id).first()
    if issue is None or issue.status != NewsletterIssue.Status.SENDING:
        return True
    rendered = _render_issue_versions(issue)
    deadline = time.monotonic() + seconds
    while send_issue_batch(issue_id=issue_id, batch_size=batch_size, rendered=rendered):
        if time.monotonic() > deadline:
            return False
    return True


def articles_to_offer(*, limit=3):
    """The newest live articles no issue features yet: offered as one-click drafts."""
    return (
        Article.objects.published()
        .filter(newsletter_issues__isnull=True)
        .order_by("-published_at")[:limit]
    )


def draft_issue_from_article(*, article):
    """A draft announcing `article`: its title as subject, its summary, the article as a card."""
    with transaction.atomic():
        issue = save_issue(
            issue=NewsletterIssue(subject=article.title[:150], body=f"{article.summary}\n")
        )
        issue.featured_articles.set([article])
    return issue


def erase_subscribers(*, subscribers):
    """Erase people from the newsletter: their row, consent record, deliveries and the copies
    in the outbox (which hold their address). Each issue keeps their copies in its counts.

    Returns how many people were erased.
    """
    with transaction.atomic():
        # Locked first, so a fan-out batch that holds one of them finishes before we count.
        ids = lock(
            Subscriber.objects.filter(pk__in=subscribers.values("pk")).values_list("pk", flat=True)
        )
        deliveries = Delivery.objects.filter(subscriber__in=ids)
        buckets = {
            OutgoingEmail.State.SENT: "erased_sent",
            OutgoingEmail.State.FAILED: "erased_failed",
        }
        counted = deliveries.values("issue", "email__state").order_by().annotate(n=Count("pk"))
        for row in counted:
            field = buckets.get(row["email__state"], "erased_unsent")
            NewsletterIssue.objects.filter(pk=row["issue"]).update(**{field: F(field) + row["n"]})
        email_ids = list(deliveries.values_list("email", flat=True))
        deliveries.delete()
        OutgoingEmail.objects.filter(pk__in=email_ids).delete()
        for pk in ids:  # their confirmation emails hold the address too
            OutgoingEmail.objects.filter(
                idempotency_key__startswith=f"newsletter:confirm:{pk}:"
            ).delete()
        Subscriber.objects.filter(pk__in=ids).delete()
    return len(ids)


EXPORT_FIELDS = [
    "email",
    "status",
    "signed_up_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_text",
    "consent_at",
    "consent_page",
    "consent_ip",
]


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a quote."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def write_subscribers_csv(*, subscribers, out):
    """Write `subscribers` as CSV to the file-like `out`: address, status, dates, consent."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for row in subscribers.order_by("pk").values_list(*EXPORT_FIELDS).iterator(chunk_size=2000):
        writer.writerow([spreadsheet_safe(value) for value in row])
