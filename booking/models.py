"""The schedule: services, therapists and their hours, the clinic's booking rules, appointments."""

import re
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import get_text_list
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from clinic.images import sanitise_upload, square_webp_sizes
from clinic.models import WeeklyInterval


class ServiceQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def bookable(self):
        """Bookable online and offered by at least one bookable therapist."""
        return self.active().filter(therapists__is_active=True).distinct()

    def given_in(self, room):
        """The treatments that may be given in `room` (RoomQuerySet.suiting the other way)."""
        if not room.is_bookable:
            return self.none()
        kinds = [Service.RoomNeed.ANY]
        if room.kind == Room.Kind.COUPLES:
            kinds.append(Service.RoomNeed.COUPLES)
        return self.filter(room_need__in=kinds)


class Service(models.Model):
    """A treatment patients can book, with its length and the buffer kept free after it."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    # Spanish text staff write beside the English; empty means the English is shown.
    name_es = models.CharField("name in Spanish", max_length=120, blank=True)
    description_es = models.TextField("description in Spanish", blank=True)
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(5), MaxValueValidator(8 * 60)]
    )
    buffer_minutes = models.PositiveSmallIntegerField(
        _("buffer after (minutes)"),
        default=0,
        validators=[MaxValueValidator(120)],
        help_text=_("Time kept free after the appointment (notes, cleaning, changing the table)."),
    )
    price = models.DecimalField(
        _("price shown"), max_digits=7, decimal_places=2, null=True, blank=True
    )
    is_active = models.BooleanField(_("bookable online"), default=True)
    display_order = models.PositiveSmallIntegerField(_("display order"), default=0)
    # Which health questions the details step asks for this treatment (staff choose; a new
    # treatment asks all four until staff decide otherwise). The answers are staff-only.
    asks_clot_signs = models.BooleanField(
        "ask: new calf swelling, warmth, redness or pain at rest", default=True
    )
    asks_surgery_or_immobility = models.BooleanField(
        "ask: surgery or a long time immobile in the last 3 months", default=True
    )
    asks_blood_thinners = models.BooleanField("ask: takes blood thinners", default=True)
    asks_pregnant = models.BooleanField(
        "ask: pregnant or could be",
        default=True,
        help_text="Untick the questions that do not matter for this treatment "
        "(say, calf questions for a neck massage).",
    )

    class RoomNeed(models.TextChoices):
        NONE = "", "No room (by phone, at the patient's home)"
        ANY = "single", "A treatment room (a couples room will do when the others are taken)"
        COUPLES = "couples", "A couples room"

    room_need = models.CharField(
        "room needed",
        max_length=10,
        choices=RoomNeed.choices,
        default=RoomNeed.NONE,
        blank=True,
        help_text="A time is offered only when a therapist and such a room are both free. "
        "Patients never choose the room: the booking picks one.",
    )
    for_two = models.BooleanField(
        "for two (couples)",
        default=False,
        help_text="Two people side by side: one booking takes two therapists and a couples "
        "room at once.",
    )

    objects = ServiceQuerySet.as_manager()

    class Meta:
        ordering = ["display_order", "name"]
        verbose_name = _("service")
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gte=5), name="service_duration"),
            models.CheckConstraint(
                condition=Q(for_two=False) | Q(room_need="couples"),
                name="service_for_two_needs_couples_room",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.for_two and self.room_need != self.RoomNeed.COUPLES:
            raise ValidationError(
                {"room_need": "A treatment for two needs a couples room: choose it here."}
            )

    @property
    def duration(self):
        return timedelta(minutes=self.duration_minutes)

    @property
    def buffer(self):
        return timedelta(minutes=self.buffer_minutes)

    @property
    def intake_fields(self):
        """The Appointment intake fields the details step asks for this treatment, in order."""
        return [
            name
            for name in Appointment.INTAKE_FIELDS
            if getattr(self, "asks_" + name.removeprefix("intake_"))
        ]


# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
CALENDAR_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# How far back a therapist's calendar feed goes (its apps keep what they already had).
FEED_DAYS_BACK = 30


class TherapistQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def offering(self, service):
        return self.active().filter(services=service)

    def bookable(self):
        """Bookable online and offering at least one treatment bookable online."""
        return self.active().filter(services__is_active=True).distinct()

    def with_calendar_token(self, token):
        """The therapist whose calendar feed `token` opens; none for anything that is not
        the shape reset_calendar_feed makes (so odd bytes never reach the database), and
        none while the therapist is inactive or their staff login is: a therapist who left
        has no feed. (Unlinking or deleting the login forgets the secret itself.)"""
        if not isinstance(token, str) or not CALENDAR_TOKEN.fullmatch(token):
            return self.none()
        login_active = Q(user__isnull=True) | Q(user__is_active=True)
        return self.active().filter(login_active, calendar_token=token)


def unlink_login(collector, field, sub_objs, using):
    """on_delete for a therapist's staff login: the therapist stays, unlinked, and their
    calendar feed's secret is forgotten with it (the feed was that login's)."""
    models.SET_NULL(collector, field, sub_objs, using)
    collector.add_field_update(Therapist._meta.get_field("calendar_token"), None, sub_objs)


class Therapist(models.Model):
    """Someone patients can book; offers some of the services."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    bio = models.TextField(_("bio"), blank=True)
    bio_es = models.TextField("bio in Spanish", blank=True)
    photo = models.ImageField(_("photo"), upload_to="therapists/", blank=True)
    photo_alt = models.CharField(
        _("photo description"),
        max_length=200,
        blank=True,
        help_text=_("What the photo shows, for people who cannot see it."),
    )
    # Square WebP copies of the photo for the home page ({width: stored name}), made once
    # the save has committed; empty until then (the page shows the photo itself).
    photo_sizes = models.JSONField(default=dict, blank=True, editable=False)
    services = models.ManyToManyField(
        Service, related_name="therapists", blank=True, verbose_name=_("services offered")
    )
    is_active = models.BooleanField(_("bookable online"), default=True)
    display_order = models.PositiveSmallIntegerField(_("display order"), default=0)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=unlink_login,
        null=True,
        blank=True,
        related_name="therapist",
        verbose_name=_("staff user"),
    )
    # The secret in the therapist's private calendar feed URL (booking.calendar); empty until
    # they ask for a link, replaced when they reset it, so the old URL answers 404.
    calendar_token = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False, default=None
    )

    objects = TherapistQuerySet.as_manager()

    class Meta:
        ordering = ["display_order", "name"]
        verbose_name = _("therapist")

    def __str__(self):
        return self.name

    PHOTO_WIDTHS = (96, 192)  # shown at 96 CSS px: 1x and 2x screens

    def save(self, *args, **kwargs):
        # A new photo is stored as a re-encoded copy: the camera's metadata (GPS) never is.
        new_photo = bool(self.photo) and not self.photo._committed
        sanitise_upload(self.photo)
        retired = []
        if new_photo or not self.photo:
            retired, self.photo_sizes = list(self.photo_sizes.values()), {}
        super().save(*args, **kwargs)
        if retired:  # the replaced photo's sizes: no page shows them any more
            transaction.on_commit(lambda: [default_storage.delete(name) for name in retired])
        if new_photo:
            pk, name = self.pk, self.photo.name
            transaction.on_commit(lambda: make_photo_sizes(pk, name))

    @property
    def photo_srcset(self):
        return ", ".join(
            f"{default_storage.url(name)} {width}w" for width, name in self.photo_sizes.items()
        )

    def clean(self):
        errors = {}
        try:
            sanitise_upload(self.photo)
        except ValidationError as error:
            errors["photo"] = error.messages
        if self.photo and not self.photo_alt.strip():
            errors["photo_alt"] = _("Describe the photo for screen readers.")
        if errors:
            raise ValidationError(errors)


def make_photo_sizes(therapist_pk, name):
    """Write the home page's sizes of a therapist's photo `name` and record them, unless
    the photo changed meanwhile (then its own save makes its own)."""
    sizes = square_webp_sizes(name, Therapist.PHOTO_WIDTHS)
    Therapist.objects.filter(pk=therapist_pk, photo=name).update(photo_sizes=sizes)


class WorkingHours(WeeklyInterval):
    """One interval a therapist works on one weekday; several make a day with breaks."""

    OWNER_FIELD = "therapist"

    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="working_hours")

    class Meta(WeeklyInterval.Meta):
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=F("opens")), name="working_hours_end_after_start"
            ),
            models.UniqueConstraint(
                fields=["therapist", "weekday", "opens"], name="working_hours_unique_start"
            ),
        ]


class TimeOffQuerySet(models.QuerySet):
    def overlapping(self, start, end):
        return self.filter(starts_at__lt=end, ends_at__gt=start)


class TimeOff(models.Model):
    """A stretch when one therapist is away (holiday, training, a doctor's visit)."""

    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="time_off")
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=120, blank=True)

    objects = TimeOffQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("time off")
        verbose_name_plural = _("time off")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="time_off_ends_after_start"
            ),
        ]

    def __str__(self):
        return f"{self.therapist}: {timezone.localtime(self.starts_at):%b %-d %H:%M}"

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must be after the start.")})


class RoomQuerySet(models.QuerySet):
    def bookable(self):
        return self.filter(is_bookable=True)

    def suiting(self, service):
        """The bookable rooms `service` may use, in the order the booking tries them (single
        rooms first, so a couples room stays free for couples while it can); none when the
        treatment needs no room."""
        if service.room_need == Service.RoomNeed.COUPLES:
            return self.bookable().filter(kind=Room.Kind.COUPLES).order_by("display_order", "pk")
        if service.room_need == Service.RoomNeed.ANY:
            single_first = models.Case(
                models.When(kind=Room.Kind.SINGLE, then=0),
                default=1,
                output_field=models.IntegerField(),
            )
            return self.bookable().order_by(single_first, "display_order", "pk")
        return self.none()


class Room(models.Model):
    """A treatment room. On PostgreSQL an exclusion constraint keeps two visits (or held
    times) from meeting in one room, buffers counted, as it does for a therapist; the two
    visits of one couples booking share their room."""

    class Kind(models.TextChoices):
        SINGLE = "single", "Single (one table)"
        COUPLES = "couples", "Couples (two tables)"

    name = models.CharField("name", max_length=80, unique=True)
    kind = models.CharField("kind", max_length=10, choices=Kind.choices, default=Kind.SINGLE)
    is_bookable = models.BooleanField(
        "bookable", default=True, help_text="Untick to stop booking it (say, while it is refitted)."
    )
    display_order = models.PositiveSmallIntegerField("display order", default=0)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["display_order", "name"]
        verbose_name = "room"

    def __str__(self):
        return self.name


class RoomClosure(models.Model):
    """A stretch when one room cannot be used (repairs, a deep clean)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="closures")
    starts_at = models.DateTimeField("from")
    ends_at = models.DateTimeField("until")
    reason = models.CharField("reason", max_length=120, blank=True)

    objects = TimeOffQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at"]
        verbose_name = "room closure"
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="room_closure_ends_after_start"
            ),
        ]

    def __str__(self):
        return f"{self.room}: {timezone.localtime(self.starts_at):%b %-d %H:%M}"

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must be after the start."})


class BookingRules(models.Model):
    """The clinic-wide rules for online booking (always pk=1)."""

    SINGLETON_PK = 1

    slot_step_minutes = models.PositiveSmallIntegerField(
        _("slot step (minutes)"),
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(120)],
        help_text=_("Start times are offered every this many minutes."),
    )
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=120,
        help_text=_("How long before a start time patients can still book it online."),
    )
    max_days_ahead = models.PositiveSmallIntegerField(
        _("book up to (days ahead)"), default=60, validators=[MinValueValidator(1)]
    )
    cancel_cutoff_hours = models.PositiveSmallIntegerField(
        _("cancel or reschedule up to (hours before)"), default=24
    )
    cancellation_policy = models.TextField(
        _("cancellation policy"),
        help_text=_("Shown to patients before they book; they agree to it."),
    )
    cancellation_policy_es = models.TextField(
        "cancellation policy in Spanish",
        blank=True,
        help_text="Shown on the Spanish pages; empty shows the English.",
    )
    waitlist_hold_minutes = models.PositiveSmallIntegerField(
        "waitlist hold (minutes)",
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(24 * 60)],
        help_text="How long a freed time offered to someone on the waitlist is kept for them "
        "before it goes to the next in line.",
    )
    waitlist_offer_to = models.PositiveSmallIntegerField(
        "offer a freed time to (people at once)",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="1 offers it to the first in line alone. More offers it to that many at "
        "once: the first to book it wins, and the others stay on the waitlist.",
    )

    class Meta:
        verbose_name = _("booking rules")
        verbose_name_plural = _("booking rules")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="booking_rules_is_singleton"),
            models.CheckConstraint(condition=Q(slot_step_minutes__gte=5), name="rules_step"),
            models.CheckConstraint(condition=Q(max_days_ahead__gte=1), name="rules_window"),
        ]

    def __str__(self):
        return str(_("Booking rules"))

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    @classmethod
    def current(cls):
        """The rules, read from the database (never cached: the booking service re-checks)."""
        rules = cls.objects.filter(pk=cls.SINGLETON_PK).first()
        return rules or cls(pk=cls.SINGLETON_PK, cancellation_policy="")

    def for_engine(self):
        from .slots import Rules

        return Rules(
            step=self.slot_step, min_notice=self.min_notice, max_days_ahead=self.max_days_ahead
        )

    @property
    def slot_step(self):
        return timedelta(minutes=self.slot_step_minutes)

    @property
    def min_notice(self):
        return timedelta(minutes=self.min_notice_minutes)

    @property
    def window(self):
        return timedelta(days=self.max_days_ahead)

    @property
    def waitlist_hold(self):
        return timedelta(minutes=self.waitlist_hold_minutes)

    @property
    def cancel_cutoff(self):
        return timedelta(hours=self.cancel_cutoff_hours)

    def online_change_closes(self, start):
        """The last moment a visit at `start` may be moved or cancelled online."""
        return start - self.cancel_cutoff


def new_public_token():
    return secrets.token_urlsafe(24)


class AppointmentQuerySet(models.QuerySet):
    def active(self):
        """Appointments that hold their time: all but cancelled ones."""
        return self.exclude(status=Appointment.Status.CANCELLED)

    def overlapping(self, therapist, start, end):
        """Appointments of `therapist` whose time, buffer included, meets [start, end)."""
        return self.filter(therapist=therapist, starts_at__lt=end, blocked_until__gt=start)

    def in_room(self, room, start, end):
        """Appointments in `room` whose time, buffer included, meets [start, end)."""
        return self.filter(room=room, starts_at__lt=end, blocked_until__gt=start)

    def together_with(self, appointment):
        """`appointment` and the other visit booked with it (a couples booking)."""
        if appointment.pair is None:
            return self.filter(pk=appointment.pk)
        return self.filter(pair=appointment.pair).order_by("pk")

    def within(self, start, end):
        return self.filter(starts_at__lt=end, blocked_until__gt=start)

    def due_for_reminder(self, now, *, lead):
        """Confirmed appointments owed a reminder at `now`.

        Due from `lead` before the start until the start itself, so a beat every N minutes
        sends each reminder within N minutes after the mark however its runs fall, and one
        that was down catches up while the visit is still ahead. `reminded_for` (the start
        already reminded for) stops a second one; a moved appointment is owed one again for
        its new time, unless that time was set less than `lead` ahead.
        """
        # A couples booking is reminded once, by its first visit (one email names both).
        second_of_pair = Appointment.objects.filter(pair=OuterRef("pair"), pk__lt=OuterRef("pk"))
        return self.filter(
            Q(reminded_for__isnull=True) | ~Q(reminded_for=F("starts_at")),
            status=Appointment.Status.CONFIRMED,
            starts_at__gt=now,
            starts_at__lte=now + lead,
            scheduled_at__lte=F("starts_at") - lead,
        ).exclude(Exists(second_of_pair))

    def in_calendar_feed(self, therapist, *, now):
        """A therapist's visits their calendar feed lists: from FEED_DAYS_BACK days ago on,
        cancelled ones included (the feed marks them so)."""
        return self.filter(
            therapist=therapist, starts_at__gte=now - timedelta(days=FEED_DAYS_BACK)
        ).order_by("starts_at", "pk")

    def needing_clearance(self):
        """Appointments whose intake has a "yes": the therapist checks before deep work."""
        return self.filter(
            Q(intake_clot_signs=True)
            | Q(intake_surgery_or_immobility=True)
            | Q(intake_blood_thinners=True)
            | Q(intake_pregnant=True)
        )


class Appointment(models.Model):
    """One booked visit. On PostgreSQL an exclusion constraint keeps a therapist's active
    appointments (buffer included) from overlapping, however a row arrives."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        COMPLETED = "completed", _("Completed")
        NO_SHOW = "no_show", _("No-show")

    public_token = models.CharField(
        max_length=64, unique=True, default=new_public_token, editable=False
    )
    therapist = models.ForeignKey(Therapist, on_delete=models.PROTECT, related_name="appointments")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    room = models.ForeignKey(
        Room,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
        help_text="Leave empty to take the first suitable room free then.",
    )
    # The visits of one couples booking share a number (and their room); empty otherwise.
    pair = models.BigIntegerField("booked together", null=True, blank=True, editable=False)
    # The price the patient was shown when booking: a later change of the treatment's price
    # does not change what their confirmation, emails and calendar file say they pay.
    price = models.DecimalField(
        _("price"),
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="As booked (the treatment's price then). Empty on a new visit: the "
        "treatment's price now.",
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    blocked_until = models.DateTimeField(
        _("blocked until"), help_text=_("The end plus the service's buffer.")
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.CONFIRMED
    )
    patient_name = models.CharField(_("name"), max_length=120)
    patient_email = models.EmailField(_("email"), max_length=254)
    patient_phone = PhoneNumberField(_("phone"), region="US")
    notes = models.TextField(_("notes"), max_length=1000, blank=True)
    consented_to_policy_at = models.DateTimeField(_("agreed to the cancellation policy"))
    submission_key = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        editable=False,
        help_text="The booking form's one-time key: a second submit of it books nothing new.",
    )
    created_at = models.DateTimeField(_("booked"), default=timezone.now)
    scheduled_at = models.DateTimeField(
        _("time set"),
        default=timezone.now,
        help_text=_("When the current time was booked or last moved (reminders go by it)."),
    )
    sequence = models.PositiveIntegerField(
        default=0, editable=False, help_text="Calendar revision: one more at each change."
    )
    reminded_for = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The start time a reminder was sent for."
    )
    source_article = models.ForeignKey(
        "articles.Article",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="bookings",
        verbose_name=_("came from article"),
    )
    # Health answers: shown to staff only; never in an email, a log, a URL or a cache key.
    intake_clot_signs = models.BooleanField(
        _("new calf swelling, warmth, redness or pain at rest"), null=True, blank=True
    )
    intake_surgery_or_immobility = models.BooleanField(
        _("surgery or a long time immobile in the last 3 months"), null=True, blank=True
    )
    intake_blood_thinners = models.BooleanField(_("takes blood thinners"), null=True, blank=True)
    intake_pregnant = models.BooleanField(_("pregnant"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    cancellation_reason = models.CharField(_("cancellation reason"), max_length=300, blank=True)
    # The language the patient booked in: every email to them goes out in it, whoever sends.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    # The person (clinic.patients): the booking's own record until its address is proven.
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("patient"),
    )

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("appointment")
        indexes = [
            models.Index(fields=["therapist", "starts_at"], name="appointment_therapist_start"),
            models.Index(fields=["starts_at"], name="appointment_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="appointment_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(blocked_until__gte=F("ends_at")), name="appointment_buffer_after_end"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                name="appointment_cancelled_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.patient_name}, {timezone.localtime(self.starts_at):%a %b %-d %H:%M}"

    def save(self, *args, **kwargs):
        # However a visit is made (the booking, the admin, a shell), it keeps today's price.
        if self._state.adding and self.price is None and self.service_id is not None:
            self.price = self.service.price
        super().save(*args, **kwargs)

    INTAKE_FIELDS = (
        "intake_clot_signs",
        "intake_surgery_or_immobility",
        "intake_blood_thinners",
        "intake_pregnant",
    )

    @property
    def is_active(self):
        return self.status != self.Status.CANCELLED

    @cached_property
    def visits_together(self):
        """This visit and the other booked with it (a couples booking), in booking order."""
        if self.pair is None:
            return [self]
        return list(Appointment.objects.together_with(self).select_related("therapist"))

    @property
    def therapist_names(self):
        """Its therapist, or both of a couples booking, as one phrase in the active language."""
        return get_text_list([visit.therapist.name for visit in self.visits_together], _("and"))

    @property
    def companion(self):
        """The second person's visit of a couples booking, or None."""
        return next((visit for visit in self.visits_together if visit.pk != self.pk), None)

    @property
    def needs_clearance(self):
        return any(getattr(self, name) for name in self.INTAKE_FIELDS)

    @property
    def intake_answered(self):
        return any(getattr(self, name) is not None for name in self.INTAKE_FIELDS)


# --- what articles bring: the admin's article list and appointment list both show it -----
def _bookings_since(since):
    """The active bookings an article brought that were made since `since`, as a subquery.

    A subquery rather than Count() over a join: the list keeps no GROUP BY, so actions,
    prefetches and the paginator's count see a plain queryset.
    """
    counted = (
        Appointment.objects.active()
        .filter(source_article=OuterRef("pk"), created_at__gte=since)
        .order_by()
        .values("source_article")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counted), 0)


def with_booking_counts(articles, *, now):
    """`articles` annotated with bookings_30 and bookings_365: the bookings each brought
    (Appointment.source_article) made in the last 30 and 365 days, cancelled ones left out."""
    return articles.annotate(
        bookings_30=_bookings_since(now - timedelta(days=30)),
        bookings_365=_bookings_since(now - timedelta(days=365)),
    )


# --- the waitlist: patients asking to be told when a time that suits them frees up ------
class WaitlistEntryQuerySet(models.QuerySet):
    def waiting(self):
        """Entries still asking to be told: not left, not booked, not past their last day."""
        return self.filter(state=WaitlistEntry.State.WAITING)

    def for_email(self, email):
        return self.filter(email__iexact=email)

    def wanted_on(self, day):
        """Entries whose range covers `day` and, where some days were chosen, that is one."""
        some_days = Cast("days", models.TextField())
        return (
            self.filter(first_day__lte=day, last_day__gte=day)
            .annotate(days_text=some_days)
            .filter(Q(days=[]) | Q(days_text__contains=f'"{day.isoformat()}"'))
        )


class WaitlistEntry(models.Model):
    """A patient's wish to be told when a time suits: a treatment, a therapist or any, a
    date range (or some days of it), and parts of the day. Matched by booking.waitlist."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        BOOKED = "booked", _("Booked")
        LEFT = "left", _("Left the list")
        EXPIRED = "expired", _("Expired")

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="waitlist")
    # Empty means "any therapist who offers the treatment".
    therapist = models.ForeignKey(
        Therapist,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="waitlist",
        verbose_name=_("therapist"),
    )
    first_day = models.DateField(_("from"))
    last_day = models.DateField(_("until"))
    # Some days of the range only (ISO dates); empty means every day of it.
    days = models.JSONField(_("only these days"), default=list, blank=True)
    morning = models.BooleanField(_("morning"), default=False)
    afternoon = models.BooleanField(_("afternoon"), default=False)
    evening = models.BooleanField(_("evening"), default=False)
    name = models.CharField(_("name"), max_length=120)
    email = models.EmailField(_("email"), max_length=254)
    phone = PhoneNumberField(_("phone"), region="US", blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    joined_at = models.DateTimeField(_("joined"), default=timezone.now)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.WAITING
    )
    # Linked once its patient proves the address (booking from its offer email).
    patient = models.ForeignKey(
        "clinic.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="waitlist_entries",
        verbose_name=_("patient"),
    )

    objects = WaitlistEntryQuerySet.as_manager()

    class Meta:
        ordering = ["joined_at", "pk"]
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist")
        indexes = [
            models.Index(fields=["state", "service", "last_day"], name="waitlist_waiting"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_day__gte=F("first_day")), name="waitlist_range_in_order"
            ),
            models.CheckConstraint(
                condition=Q(morning=True) | Q(afternoon=True) | Q(evening=True),
                name="waitlist_some_part_of_day",
            ),
        ]

    def __str__(self):
        return f"{self.name}: {self.service} {self.first_day:%b %-d}–{self.last_day:%b %-d}"

    def clean(self):
        """Chosen days are ISO dates inside the range (staff may edit them in the admin)."""
        from datetime import date

        if not isinstance(self.days, list):
            raise ValidationError({"days": _("Days are a list of dates like 2027-03-01.")})
        for day in self.days:
            try:
                parsed = date.fromisoformat(day)
            except (TypeError, ValueError):
                raise ValidationError(
                    {"days": _("Days are a list of dates like 2027-03-01.")}
                ) from None
            if self.first_day and self.last_day and not self.first_day <= parsed <= self.last_day:
                raise ValidationError({"days": _("Each day must be inside the range.")})

    @property
    def chosen_days(self):
        """The days chosen one by one, as dates (empty: every day of the range)."""
        from datetime import date

        return [date.fromisoformat(day) for day in sorted(self.days)]

    @property
    def parts(self):
        return frozenset(
            part for part in ("morning", "afternoon", "evening") if getattr(self, part)
        )

    def for_matching(self):
        """This entry as booking.waitlist's pure Wish (no ORM there)."""
        from datetime import date

        from .waitlist import Wish

        return Wish(
            entry_id=self.pk,
            service_id=self.service_id,
            therapist_id=self.therapist_id,
            first_day=self.first_day,
            last_day=self.last_day,
            days=frozenset(date.fromisoformat(day) for day in self.days),
            parts=self.parts,
            joined_at=self.joined_at,
        )


def new_offer_round():
    """An id shared by the holds of one offer (random, so no table is needed to count)."""
    return secrets.randbits(62)


class HoldQuerySet(models.QuerySet):
    def active(self):
        """Holds that keep their time from everyone but their holder (until the beat job,
        or a claim, or staff, ends them: not by the clock alone)."""
        return self.filter(state=Hold.State.ACTIVE)

    def overlapping(self, therapist, start, end):
        return self.filter(therapist=therapist, starts_at__lt=end, blocked_until__gt=start)

    def within(self, start, end):
        return self.filter(starts_at__lt=end, blocked_until__gt=start)

    def of_round(self, hold):
        """The holds offered together with `hold` (itself included)."""
        return self.filter(offer_round=hold.offer_round)

    def expired(self, now):
        return self.active().filter(expires_at__lte=now)


class Hold(models.Model):
    """A freed time offered to one waitlist entry and kept for it until `expires_at`.

    A time offered to several at once ("first to claim wins") is one hold per entry, all with
    the same `offer_round`. On PostgreSQL an exclusion constraint keeps a therapist's active
    holds of different rounds from overlapping, as appointments' does; booking re-checks
    holds and appointments under the therapist's lock. One entry is never offered one time
    twice (the unique constraint).
    """

    class State(models.TextChoices):
        ACTIVE = "active", _("Held")
        CLAIMED = "claimed", _("Booked")
        EXPIRED = "expired", _("Expired")
        RELEASED = "released", _("Released")
        LOST = "lost", _("Booked by another")

    entry = models.ForeignKey(
        WaitlistEntry, on_delete=models.CASCADE, related_name="holds", verbose_name=_("for")
    )
    therapist = models.ForeignKey(Therapist, on_delete=models.CASCADE, related_name="holds")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="holds")
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, null=True, blank=True, related_name="holds"
    )
    starts_at = models.DateTimeField(_("starts"))
    blocked_until = models.DateTimeField(_("blocked until"))
    expires_at = models.DateTimeField(_("held until"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default="active")
    created_at = models.DateTimeField(_("offered"), default=timezone.now)
    appointment = models.OneToOneField(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="hold"
    )
    offer_round = models.BigIntegerField(default=new_offer_round, editable=False)

    objects = HoldQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("waitlist hold")
        indexes = [models.Index(fields=["state", "expires_at"], name="hold_state_expiry")]
        constraints = [
            models.CheckConstraint(
                condition=Q(blocked_until__gt=F("starts_at")), name="hold_ends_after_start"
            ),
            # One time, whichever therapist (a room's freed time may go to any of them).
            models.UniqueConstraint(fields=["entry", "starts_at"], name="hold_one_offer_per_entry"),
        ]

    def __str__(self):
        return f"{self.entry.name}: {timezone.localtime(self.starts_at):%a %b %-d %H:%M}"


class VacancyQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(offered_at__isnull=True)


class Vacancy(models.Model):
    """Time that became free with one therapist (a cancellation, a move, a deleted visit,
    time off removed) and/or in one room (the visit's room, a room closure removed or
    shortened), written in the same transaction as the change: the waitlist is offered it
    by a task after commit, and by the beat if that task was lost. Time freed in a room may
    go to any therapist free then (the room may have been all they lacked)."""

    therapist = models.ForeignKey(
        Therapist, on_delete=models.CASCADE, null=True, blank=True, related_name="vacancies"
    )
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, null=True, blank=True, related_name="vacancies"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    offered_at = models.DateTimeField(null=True, blank=True)

    objects = VacancyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "vacancies"
        indexes = [models.Index(fields=["offered_at"], name="vacancy_pending")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="vacancy_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(therapist__isnull=False) | Q(room__isnull=False),
                name="vacancy_of_a_therapist_or_a_room",
            ),
        ]

    def __str__(self):
        whose = self.therapist or self.room
        return f"{whose}: {timezone.localtime(self.starts_at):%a %b %-d %H:%M}"


# --- the health history and consent a patient signs before their first visit ---------------
class ConsentText(models.Model):
    """The clinic's consent wording, as staff wrote it: each change is a new version, and a
    version once saved is never edited (a signature names the version it agreed to)."""

    version = models.PositiveIntegerField(unique=True, editable=False)
    text = models.TextField(
        "consent text", help_text="What the patient agrees to when signing their health history."
    )
    text_es = models.TextField(
        "consent text in Spanish", blank=True, help_text="Empty shows the English."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-version"]
        verbose_name = "consent text"
        constraints = [
            models.CheckConstraint(condition=Q(version__gte=1), name="consent_version_positive")
        ]

    def __str__(self):
        return f"Consent text, version {self.version}"

    @classmethod
    def current(cls):
        return cls.objects.order_by("-version").first()


class HealthHistoryQuerySet(models.QuerySet):
    def latest_per_patient(self, patient_ids):
        """{patient id: LatestHistory} (the newest version's signing time, whether it has a
        "yes", whether it is unconfirmed) for `patient_ids`, in one query."""
        newest = self.filter(patient_id=OuterRef("patient_id")).order_by("-signed_at", "-pk")
        # Never an empty IN (Django skips the query then): one query whatever is shown.
        rows = (
            self.filter(patient_id__in=sorted(patient_ids) or [-1])
            .filter(pk=Subquery(newest.values("pk")[:1]))
            .values(
                "patient_id",
                "signed_at",
                "signed_with_proven_address",
                "patient__verified_at",
                *Appointment.INTAKE_FIELDS,
            )
        )
        return {
            row["patient_id"]: LatestHistory(
                signed_at=row["signed_at"],
                flagged=any(row[name] for name in Appointment.INTAKE_FIELDS),
                unconfirmed=history_unconfirmed(
                    proven=row["signed_with_proven_address"],
                    record_verified=row["patient__verified_at"] is not None,
                ),
            )
            for row in rows
        }


class LatestHistory(NamedTuple):
    """The newest signed version of a patient's health history, as staff flags need it."""

    signed_at: datetime | None = None
    flagged: bool = False  # a "yes" to a red-flag question
    unconfirmed: bool = False  # see history_unconfirmed()


def history_unconfirmed(*, proven, record_verified):
    """A version signed before anyone proved they hold the address, now on the address's
    verified record: it may be a stranger's answers shown as the owner's (someone who typed
    the address and signed from the confirmation page). On an unverified record it is that
    booking's own and misleads nobody."""
    return record_verified and not proven


class HealthHistory(models.Model):
    """One signed version of a patient's health history and consent. Health data: staff only,
    never in an email, a log line, a URL, a cookie or a cache key.

    Signed means locked: a change is a new row (booking.health.sign_health_history), and
    save() refuses to rewrite one."""

    class Pressure(models.TextChoices):
        LIGHT = "light", _("Light")
        MEDIUM = "medium", _("Medium")
        FIRM = "firm", _("Firm")
        ASK = "ask", _("Ask me during the visit")

    patient = models.ForeignKey(
        "clinic.Patient", on_delete=models.CASCADE, related_name="health_histories"
    )
    conditions = models.TextField(_("health conditions"), max_length=2000, blank=True)
    medications = models.TextField(_("medications"), max_length=2000, blank=True)
    areas_to_avoid = models.TextField(_("areas to avoid"), max_length=1000, blank=True)
    pressure = models.CharField(_("pressure preference"), max_length=8, choices=Pressure.choices)
    emergency_name = models.CharField(_("emergency contact"), max_length=120)
    emergency_phone = PhoneNumberField(_("emergency contact's phone"), region="US")
    # Today's red-flag questions (Appointment.INTAKE_FIELDS), answered for every visit ahead.
    intake_clot_signs = models.BooleanField(_("new calf swelling, warmth, redness or pain at rest"))
    intake_surgery_or_immobility = models.BooleanField(
        _("surgery or a long time immobile in the last 3 months")
    )
    intake_blood_thinners = models.BooleanField(_("takes blood thinners"))
    intake_pregnant = models.BooleanField(_("pregnant"))
    consent_text = models.ForeignKey(
        ConsentText, on_delete=models.PROTECT, related_name="signatures"
    )
    signed_name = models.CharField(_("signed as"), max_length=120)
    signed_at = models.DateTimeField(_("signed"))
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    appointment = models.ForeignKey(
        Appointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The visit whose link it was signed from.",
    )
    # False: signed on a record nobody had proven the address of (the confirmation page's
    # link), which may since have joined the address's verified record: staff check it.
    signed_with_proven_address = models.BooleanField(
        "address proven at signing",
        default=False,
        help_text=(
            "Whether the signer had proven they read mail at the address (the emailed link, or "
            "a record already confirmed). If not, someone else may have signed it."
        ),
    )

    objects = HealthHistoryQuerySet.as_manager()

    class Meta:
        ordering = ["signed_at", "pk"]
        verbose_name = "health history"
        verbose_name_plural = "health histories"
        indexes = [models.Index(fields=["patient", "signed_at"], name="health_history_latest")]

    def __str__(self):
        return f"Health history signed {timezone.localtime(self.signed_at):%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        # Signed is locked: whatever code path, a stored signature is never rewritten.
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError("A signed health history is locked: sign a new version.")
        super().save(*args, **kwargs)

    @property
    def needs_clearance(self):
        return any(getattr(self, name) for name in Appointment.INTAKE_FIELDS)

    @property
    def unconfirmed(self):
        """Signed before the address was proven and now on its verified record: staff check
        it with the patient (the newest version is shown to the address's owner to correct)."""
        return history_unconfirmed(
            proven=self.signed_with_proven_address,
            record_verified=self.patient.verified_at is not None,
        )


class ScheduleVersion(models.Model):
    """One row whose token every write to a table that decides free times replaces, by a
    database trigger in the same transaction (booking.schedule_version)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    token = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="schedule_version_is_singleton")
        ]

    def __str__(self):
        return self.token
