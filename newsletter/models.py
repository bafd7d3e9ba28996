"""The newsletter: subscribers who confirmed by email (double opt-in), issues and deliveries."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.i18n import field_name, language_name, site_language, translated_languages


class SubscriberQuerySet(models.QuerySet):
    def confirmed(self):
        return self.filter(status=Subscriber.Status.CONFIRMED)

    def never_confirmed_since(self, moment):
        """Pending sign-ups made before `moment` (the purge takes them)."""
        return self.filter(status=Subscriber.Status.PENDING, signed_up_at__lt=moment)


class Subscriber(models.Model):
    """One address on the list. Only `confirmed` ones receive issues."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for confirmation")
        CONFIRMED = "confirmed", _("Confirmed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    # Stored lower-cased (services.normalise_email); the constraint holds it whatever writes.
    email = models.EmailField(_("email"), max_length=254)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    signed_up_at = models.DateTimeField(_("signed up"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(_("last confirmation email"), null=True, blank=True)
    # The consent record: what was agreed to, when, where, and from roughly where.
    consent_text = models.TextField(_("wording agreed to"), blank=True)
    consent_at = models.DateTimeField(_("agreed at"), null=True, blank=True)
    consent_page = models.CharField(_("signed up on page"), max_length=500, blank=True)
    consent_ip = models.GenericIPAddressField(
        _("network (truncated IP)"),
        null=True,
        blank=True,
        help_text=_("The address with its last part zeroed: /24 for IPv4, /48 for IPv6."),
    )

    # The language they signed up in: their confirmation and issues come in it.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    # The address's verified patient record, once both the sign-up and the record are
    # proven (clinic.patients): a confirmed address never joins an unproven record.
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="newsletter_subscriptions",
        verbose_name=_("patient"),
    )

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["-signed_up_at"]
        verbose_name = _("subscriber")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_unique_ci"),
            models.CheckConstraint(
                condition=~Q(status="confirmed") | Q(confirmed_at__isnull=False),
                name="subscriber_confirmed_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="unsubscribed") | Q(unsubscribed_at__isnull=False),
                name="subscriber_unsubscribed_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "signed_up_at"], name="subscriber_status")]

    def __str__(self):
        return self.email


class NewsletterIssueQuerySet(models.QuerySet):
    def with_progress(self):
        """Each issue annotated with queued, sent, failed and delivery counts, in one query.

        Counted from the deliveries joined to their outbox rows; copies of subscribers who
        were erased since are added from the issue's own counters (their rows are gone).
        """
        from clinic.models import OutgoingEmail

        state = "deliveries__email__state"
        unsent = [OutgoingEmail.State.PENDING, OutgoingEmail.State.SENDING]
        # Confirmed subscribers the fan-out has not reached yet: none once every copy is queued.
        not_reached = (
            Subscriber.objects.confirmed()
            .filter(
                ~models.Exists(
                    Delivery.objects.filter(
                        issue=OuterRef(OuterRef("pk")), subscriber=OuterRef("pk")
                    )
                )
            )
            .order_by()
            .annotate(count=models.Func(F("pk"), function="COUNT"))
            .values("count")
        )
        return self.annotate(
            delivered_count=models.Count("deliveries"),
            queued_count=models.Count("deliveries", filter=Q(**{f"{state}__in": unsent})),
            sent_count=models.Count("deliveries", filter=Q(**{state: OutgoingEmail.State.SENT}))
            + F("erased_sent"),
            failed_count=models.Count("deliveries", filter=Q(**{state: OutgoingEmail.State.FAILED}))
            + F("erased_failed"),
            remaining_count=Case(
                When(status=NewsletterIssue.Status.SENT, then=Value(0)),
                default=Coalesce(Subquery(not_reached, output_field=models.IntegerField()), 0),
            ),
        )


class NewsletterIssue(models.Model):
    """One newsletter issue: written as a draft, then sent once to every confirmed subscriber."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")

    subject = models.CharField(_("subject"), max_length=150)
    body = models.TextField(
        _("body"), help_text=_("Markdown, sanitised as articles are. Keep it short: a few lines.")
    )
    body_html = models.TextField(editable=False, blank=True)
    # The Spanish version, optional: without one, Spanish subscribers get the English issue.
    subject_es = models.CharField(_("subject in Spanish"), max_length=150, blank=True)
    body_es = models.TextField(
        _("body in Spanish"),
        blank=True,
        help_text=_("Leave both Spanish fields empty to send the English issue to everyone."),
    )
    body_html_es = models.TextField(editable=False, blank=True)
    featured_articles = models.ManyToManyField(
        "articles.Article",
        related_name="newsletter_issues",
        blank=True,
        verbose_name=_("featured articles"),
        help_text=_("Shown below the text as cards that link to each article."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sending_started_at = models.DateTimeField(_("sending started"), null=True, blank=True)
    sent_at = models.DateTimeField(
        _("every copy queued"),
        null=True,
        blank=True,
        help_text=_("When the last subscriber's copy was written to the outbox."),
    )
    # Copies of people erased since (their delivery and outbox rows are gone): kept so the
    # issue's figures stay true after an erasure.
    erased_sent = models.PositiveIntegerField(default=0, editable=False)
    erased_failed = models.PositiveIntegerField(default=0, editable=False)
    erased_unsent = models.PositiveIntegerField(default=0, editable=False)

    objects = NewsletterIssueQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("newsletter issue")
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft") | Q(sending_started_at__isnull=False),
                name="issue_sending_has_start",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="issue_sent_has_time",
            ),
        ]

    def __str__(self):
        return self.subject

    @property
    def is_draft(self):
        return self.status == self.Status.DRAFT

    def clean(self):
        # Half a translated version would silently send the original to its readers.
        for language in translated_languages(self, "subject"):
            subject = getattr(self, field_name("subject", language)).strip()
            body = getattr(self, field_name("body", language)).strip()
            if bool(subject) != bool(body):
                missing = field_name("body" if subject else "subject", language)
                message = _("Give the %(language)s version both a subject and a body, or neither.")
                raise ValidationError({missing: message % {"language": language_name(language)}})

    def has_version(self, language):
        """Whether staff wrote the issue in `language` (subject and body), or it is the
        site's own language."""
        if site_language(language) == settings.LANGUAGE_CODE:
            return True
        if language not in translated_languages(self, "subject"):
            return False
        return bool(
            getattr(self, field_name("subject", language)).strip()
            and getattr(self, field_name("body", language)).strip()
        )

    @property
    def versions(self):
        """[(code, English name)] of the languages, besides the site's, it is written in."""
        return [
            (code, language_name(code))
            for code in translated_languages(self, "subject")
            if self.has_version(code)
        ]

    @property
    def erased_count(self):
        return self.erased_sent + self.erased_failed + self.erased_unsent


class Delivery(models.Model):
    """One subscriber's copy of one issue: written with its outbox row, at most once."""

    issue = models.ForeignKey(NewsletterIssue, on_delete=models.PROTECT, related_name="deliveries")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    email = models.OneToOneField(
        "clinic.OutgoingEmail", on_delete=models.PROTECT, related_name="newsletter_delivery"
    )
    created_at = models.DateTimeField(_("queued"), default=timezone.now)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["issue", "subscriber"], name="delivery_once_per_issue")
        ]

    def __str__(self):
        return f"{self.issue} → {self.subscriber}"
