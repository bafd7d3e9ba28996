"""The newsletter: subscribers who confirmed by email (double opt-in), issues and deliveries."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    confirmation_sent_at = models.DateTimeField(
        _("last confirmation email"), null=True, blank=True
    )
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
