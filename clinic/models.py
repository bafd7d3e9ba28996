"""The clinic's own records: its profile, opening hours, closures and the email outbox."""

from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ClinicProfile(models.Model):
    """The single record that describes the clinic on every page (always pk=1)."""

    SINGLETON_PK = 1

    name = models.CharField(max_length=120)
    tagline = models.CharField(max_length=160, blank=True)
    tagline_es = models.CharField("tagline in Spanish", max_length=160, blank=True)
    phone = models.CharField(max_length=40, help_text="As patients should dial it.")
    email = models.EmailField(blank=True)
    street_address = models.CharField(max_length=200)
    locality = models.CharField("city", max_length=100)
    region = models.CharField("state", max_length=40)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="US", help_text="Two-letter code.")
    map_url = models.URLField(
        "map link", max_length=500, help_text="A plain link to the address on a map."
    )
    introduction = models.TextField(help_text="A short welcome shown on the home page.")
    introduction_es = models.TextField(
        "introduction in Spanish", blank=True, help_text="Empty shows the English."
    )
    before_visit = models.TextField(
        "before your visit",
        blank=True,
        help_text=(
            "What a patient should know before coming: arrive a few minutes early, what to "
            "wear, parking, the entrance's accessibility. Shown on the booking confirmation, "
            "in its email and in the reminder. A blank line starts a new paragraph."
        ),
    )
    before_visit_es = models.TextField(
        "before your visit in Spanish", blank=True, help_text="Empty shows the English."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinic profile"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="clinic_profile_is_singleton"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    @property
    def phone_href(self):
        """The phone as a tel: URI (digits and a leading + only)."""
        digits = "".join(ch for ch in self.phone if ch.isdigit())
        if len(digits) == 11 and digits.startswith("1"):
            return f"tel:+{digits}"
        if len(digits) == 10:
            return f"tel:+1{digits}"
        return f"tel:{digits}"

    @property
    def address_line(self):
        parts = [self.street_address, self.locality, f"{self.region} {self.postal_code}".strip()]
        return ", ".join(p for p in parts if p)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class WeeklyIntervalQuerySet(models.QuerySet):
    def as_weekly(self):
        """{owner id: {weekday: [(opens, closes), ...]}} as plain data, sorted, one query."""
        owner = self.model.OWNER_FIELD
        weekly = {}
        for owner_id, weekday, opens, closes in self.order_by(
            owner, "weekday", "opens"
        ).values_list(owner, "weekday", "opens", "closes"):
            weekly.setdefault(owner_id, {}).setdefault(weekday, []).append((opens, closes))
        return weekly

    def weekdays(self):
        """The weekdays (Monday 0) on which any of these intervals falls, in one query."""
        return set(self.values_list("weekday", flat=True).distinct())


class WeeklyInterval(models.Model):
    """One interval on one weekday, repeated every week (opening or working hours).

    A weekday without rows is closed; several rows make a day with breaks. Subclasses
    name the foreign key that groups their intervals in OWNER_FIELD.
    """

    OWNER_FIELD = None

    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    objects = WeeklyIntervalQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["weekday", "opens"]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"

    def clean(self):
        if self.opens and self.closes and self.closes <= self.opens:
            raise ValidationError({"closes": _("The end must be after the start.")})
        # Overlap between intervals is checked across the whole set being saved
        # (clinic.forms.WeeklyIntervalFormSet): one row alone cannot see its new siblings.


def overlapping_intervals(intervals):
    """The pairs among [(weekday, opens, closes), ...] that overlap on one day."""
    clashes = []
    ordered = sorted(intervals)
    for (day_a, opens_a, closes_a), (day_b, opens_b, closes_b) in zip(
        ordered, ordered[1:], strict=False
    ):
        if day_a == day_b and opens_b < closes_a:
            clashes.append(((day_a, opens_a, closes_a), (day_b, opens_b, closes_b)))
    return clashes


class OpeningHours(WeeklyInterval):
    """One opening interval on one weekday; a weekday without rows is closed."""

    OWNER_FIELD = "clinic"
    Weekday = Weekday

    clinic = models.ForeignKey(ClinicProfile, on_delete=models.CASCADE, related_name="hours")

    class Meta(WeeklyInterval.Meta):
        verbose_name_plural = "opening hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=F("opens")), name="hours_close_after_open"
            ),
            models.UniqueConstraint(
                fields=["clinic", "weekday", "opens"], name="hours_unique_start"
            ),
        ]


class ClosureQuerySet(models.QuerySet):
    def covering(self, start, end):
        """Closures with at least one day in [start, end] (dates, both included)."""
        return self.filter(starts_on__lte=end, ends_on__gte=start)


class Closure(models.Model):
    """Days the clinic is closed although its weekly hours say open (holidays, training).

    A closure blocks every therapist's appointments on those days.
    """

    clinic = models.ForeignKey(ClinicProfile, on_delete=models.CASCADE, related_name="closures")
    starts_on = models.DateField()
    ends_on = models.DateField(help_text="Last closed day (the same as the first for one day).")
    reason = models.CharField(max_length=120, blank=True)

    objects = ClosureQuerySet.as_manager()

    class Meta:
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="closure_ends_after_start"
            ),
        ]

    def __str__(self):
        if self.starts_on == self.ends_on:
            return f"Closed {self.starts_on:%b %-d, %Y}"
        return f"Closed {self.starts_on:%b %-d} – {self.ends_on:%b %-d, %Y}"

    def clean(self):
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": "The last closed day cannot be before the first."})


def outbox_grace_over():
    """When the sweep may first look at a new email: its published task may still be on its way."""
    return timezone.now() + timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES)


def new_message_id():
    """A Message-ID for a new outbox row, in the site's own domain (no DNS look-up)."""
    return make_msgid(domain=urlsplit(settings.SITE_URL).hostname or "localhost")


def send_lease():
    """How long a claim lasts unless its sender renews it (it does while it sends)."""
    return timedelta(seconds=settings.OUTBOX_SEND_LEASE_SECONDS)


class OutgoingEmailQuerySet(models.QuerySet):
    def abandoned(self, *, now):
        """Claimed by a sender whose lease ran out unrenewed: its worker died mid-send."""
        return self.filter(state=OutgoingEmail.State.SENDING, lease_expires_at__lte=now)

    def claimable(self, *, now):
        """Emails a sender may take: pending, or abandoned with attempts left."""
        pending = self.filter(state=OutgoingEmail.State.PENDING)
        return pending | self.abandoned(now=now).filter(attempts__lt=settings.OUTBOX_MAX_ATTEMPTS)

    def due(self, *, now):
        """Claimable emails whose wait is over (grace period, back-off or lease), for the sweep."""
        return self.claimable(now=now).filter(next_attempt_at__lte=now)

    def transactional_first(self):
        """Booking mail before newsletter mail, each oldest wait first."""
        bulk_last = Case(
            When(category=OutgoingEmail.Category.TRANSACTIONAL, then=Value(0)), default=Value(1)
        )
        return self.order_by(bulk_last, "next_attempt_at", "pk")


class OutgoingEmail(models.Model):
    """The outbox: every email is written here in the transaction that causes it, then sent."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Gave up"

    class Category(models.TextChoices):
        # Bulk mail has its own Celery queue, so a newsletter never delays a confirmation.
        TRANSACTIONAL = "transactional", "Transactional"
        BULK = "bulk", "Bulk (newsletter)"

    to = models.JSONField(help_text="List of recipient addresses.")
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    from_email = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    attachments = models.JSONField(
        default=list, blank=True, help_text="List of {filename, content, mimetype}; text content."
    )
    category = models.CharField(
        max_length=20, choices=Category.choices, default=Category.TRANSACTIONAL
    )
    idempotency_key = models.CharField(
        max_length=200,
        unique=True,
        null=True,
        blank=True,
        help_text="Names the event the email is for; a second email for it is never written.",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        default=outbox_grace_over,
        help_text="When the sweep may republish it: after the grace period, back-off or lease.",
    )
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep last republished it to the broker."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While being sent: when the sender's claim runs out unless it renews it.",
    )
    message_id = models.CharField(
        "Message-ID",
        max_length=255,
        default=new_message_id,
        editable=False,
        help_text="Every try sends this one Message-ID, so a copy resent after a crash is "
        "recognised as the same email.",
    )

    objects = OutgoingEmailQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outgoing email"
        indexes = [
            models.Index(fields=["state", "created_at"], name="outbox_state_created"),
            models.Index(fields=["state", "next_attempt_at"], name="outbox_state_next_attempt"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="sent") | Q(sent_at__isnull=False), name="outbox_sent_has_time"
            ),
        ]

    def __str__(self):
        return f"{self.subject} → {', '.join(self.to)}"


# --- the patient: one record per person across visits -----------------------------------------
class PatientQuerySet(models.QuerySet):
    def verified(self):
        """Records whose holder has shown they read mail at the address (followed a link
        emailed there): the only ones a later booking with that address may join."""
        return self.filter(verified_at__isnull=False)

    def for_email(self, email):
        return self.filter(email__iexact=email.strip())


class Patient(models.Model):
    """A person across visits: booking, the waitlist and the newsletter link to it.

    A booking makes a record of its own (unverified) until its patient follows a link emailed
    to the address; then it joins the address's one verified record (clinic.patients), so an
    address typed by someone else never reads or joins another person's record.
    """

    name = models.CharField(_("name"), max_length=120)
    email = models.EmailField(_("email"), max_length=254)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    verified_at = models.DateTimeField(
        _("address confirmed"),
        null=True,
        blank=True,
        help_text="When the patient followed a link emailed to the address.",
    )
    last_seen_at = models.DateTimeField(
        _("last booking"), default=timezone.now, help_text="Retention counts from here."
    )
    # Addresses of records merged into this one (staff merged two records of one person).
    other_emails = models.JSONField(_("other addresses"), default=list, blank=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("patient")
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=Q(verified_at__isnull=False),
                name="patient_one_verified_record_per_email",
            ),
        ]
        indexes = [models.Index(Lower("email"), name="patient_email_ci")]

    def __str__(self):
        return f"{self.name} <{self.email}>"

    @property
    def emails(self):
        """Every address this person is known by: their own, then merged records'."""
        seen = []
        for email in [self.email, *self.other_emails]:
            if email and email.lower() not in [e.lower() for e in seen]:
                seen.append(email)
        return seen
