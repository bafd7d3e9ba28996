from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from articles.models import Article
from clinic import personal_data
from clinic.forms import WeeklyIntervalFormSet

from . import schedule
from .health import publish_consent_text
from .models import (
    Appointment,
    BookingRules,
    ConsentText,
    HealthHistory,
    Hold,
    Room,
    RoomClosure,
    Service,
    Therapist,
    TimeOff,
    WaitlistEntry,
    WorkingHours,
    with_booking_counts,
)
from .personal_data import patient_appointments
from .services import (
    cancel_appointment,
    change_room_closures,
    change_time_off,
    delete_appointments,
    end_calendar_feed,
    leave_waitlist,
    mark_attendance,
    record_freed_by_staff_edit,
    record_hours_added,
    release_hold,
    reset_calendar_feed,
    save_room,
    validate_not_overlapping,
)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "duration_minutes",
        "buffer_minutes",
        "room_need",
        "for_two",
        "price",
        "is_active",
    ]
    list_editable = ["is_active"]
    list_filter = ["is_active", "room_need", "for_two"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


class RoomClosureInline(admin.TabularInline):
    model = RoomClosure
    extra = 0


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Staff manage the rooms: a booking takes the first suitable one free, so a room
    closed or not bookable is never given out."""

    list_display = ["name", "kind", "is_bookable", "display_order"]
    list_editable = ["is_bookable", "display_order"]
    list_filter = ["kind", "is_bookable"]
    inlines = [RoomClosureInline]

    def save_model(self, request, obj, form, change):
        save_room(room=obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not RoomClosure:
            return super().save_formset(request, form, formset, change)
        saved = formset.save(commit=False)
        covered = change_room_closures(saved=saved, deleted=formset.deleted_objects)
        for visit in covered:
            self.message_user(
                request,
                f"{visit.room} is closed during {visit.patient_name}'s visit with "
                f"{visit.therapist} at {timezone.localtime(visit.starts_at):%a %b %-d, %H:%M}: "
                "move it to another room or time.",
                messages.WARNING,
            )
        return None


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    formset = WeeklyIntervalFormSet
    extra = 0


class TimeOffInline(admin.TabularInline):
    model = TimeOff
    extra = 0


@admin.register(Therapist)
class TherapistAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "user"]
    list_filter = ["is_active", "services"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["services"]
    inlines = [WorkingHoursInline, TimeOffInline]

    # --- the therapist's own calendar feed: their page shows the secret link and resets it

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj and (request.user.is_superuser or obj.user_id == request.user.pk):
            fields.append("calendar_feed")  # only those who may open the page see the way
        return fields

    @admin.display(description="calendar feed")
    def calendar_feed(self, obj):
        url = reverse("admin:booking_therapist_calendar_feed", args=[obj.pk])
        state = "a private link is set" if obj.calendar_token else "no link yet"
        return format_html('<a href="{}">Show or reset the private link</a> ({})', url, state)

    def get_urls(self):
        feed = self.admin_site.admin_view(self.calendar_feed_view)
        return [
            path("calendar-feed/", feed, name="booking_therapist_my_calendar_feed"),
            path("<int:pk>/calendar-feed/", feed, name="booking_therapist_calendar_feed"),
            *super().get_urls(),
        ]

    def calendar_feed_view(self, request, pk=None):
        """The feed's link for the therapist signed in (or, for a superuser, any therapist),
        and a button that replaces it: the old URL stops working at once. Anyone else, and
        a staff login with no therapist, gets a 404 (the link is as good as a password)."""
        if pk is None:
            therapist = Therapist.objects.filter(user_id=request.user.pk).first()
        else:
            therapist = Therapist.objects.filter(pk=pk).first()
            own = therapist and therapist.user_id == request.user.pk
            if not (own or request.user.is_superuser):
                therapist = None
        if therapist is None:
            raise Http404("No calendar feed for this login")
        if request.method == "POST":
            had_one = bool(therapist.calendar_token)
            reset_calendar_feed(therapist=therapist)
            self.log_change(request, therapist, "Calendar feed link reset")
            message = "Your calendar link is below: subscribe to it from your phone."
            if had_one:
                message = (
                    "A new calendar link is below. The old one no longer works: calendars "
                    "subscribed to it stop updating until subscribed to this one."
                )
            self.message_user(request, message, messages.SUCCESS)
            return redirect(request.path)
        feed_url = None
        if therapist.calendar_token:
            path_ = reverse("booking:therapist_feed", args=[therapist.calendar_token])
            feed_url = settings.SITE_URL.rstrip("/") + path_
        context = {
            **self.admin_site.each_context(request),
            "title": f"Calendar feed: {therapist.name}",
            "opts": self.model._meta,
            "therapist": therapist,
            "feed_url": feed_url,
            # The feed answers 404 for a therapist who left (booking.models, with_calendar_token).
            "feed_off": not therapist.is_active
            or (therapist.user is not None and not therapist.user.is_active),
            "webcal_url": "webcal://" + feed_url.split("://", 1)[1] if feed_url else None,
        }
        response = TemplateResponse(request, "admin/booking/therapist/calendar_feed.html", context)
        response["Cache-Control"] = "private, no-store"
        return response

    def save_model(self, request, obj, form, change):
        before = Therapist.objects.filter(pk=obj.pk).values_list("user_id", flat=True).first()
        super().save_model(request, obj, form, change)
        if before is not None and obj.user_id != before:
            # The link was the old login's: whoever is linked next asks for a new one.
            end_calendar_feed(therapist=obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is WorkingHours:
            super().save_formset(request, form, formset, change)
            # New or changed hours may free time: the waitlist is offered it.
            changed = [obj for obj, _fields in formset.changed_objects]
            record_hours_added(intervals=[*formset.new_objects, *changed])
            return None
        if formset.model is not TimeOff:
            return super().save_formset(request, form, formset, change)
        # Time off removed, shortened or moved frees time: the waitlist is offered it.
        saved = formset.save(commit=False)
        covered = change_time_off(saved=saved, deleted=formset.deleted_objects)
        formset.save_m2m()
        for visit in covered:
            self.message_user(
                request,
                f"{visit.therapist} is off during {visit.patient_name}'s visit at "
                f"{timezone.localtime(visit.starts_at):%a %b %-d, %H:%M}: move it to another "
                "therapist or time, or cancel it (the patient is not told until you do).",
                messages.WARNING,
            )
        return None


@admin.register(BookingRules)
class BookingRulesAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return not BookingRules.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class AppointmentAdminForm(forms.ModelForm):
    class Meta:
        model = Appointment
        fields = [
            "therapist",
            "service",
            "room",
            "starts_at",
            "status",
            "patient_name",
            "patient_email",
            "patient_phone",
            "notes",
            "language",
            "cancellation_reason",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The admin's split date/time widget prints "Date:" and "Time:" as bare text, so
        # screen readers hear two unnamed boxes; name each one.
        parts = getattr(self.fields.get("starts_at"), "widget", None)
        if len(getattr(parts, "widgets", ())) == 2:
            parts.widgets[0].attrs["aria-label"] = "Start date"
            parts.widgets[1].attrs["aria-label"] = "Start time"

    def clean(self):
        cleaned = super().clean()
        therapist, service = cleaned.get("therapist"), cleaned.get("service")
        starts_at = cleaned.get("starts_at")
        if not (therapist and service and starts_at):
            return cleaned
        appointment = self.instance
        if appointment.pk and "service" in self.changed_data and "price" not in self.changed_data:
            # Another treatment, and no price typed: the new treatment's price, not the old.
            cleaned["price"] = service.price
        appointment.therapist, appointment.service = therapist, service
        appointment.room = cleaned.get("room")
        appointment.starts_at = starts_at
        appointment.ends_at = starts_at + service.duration
        appointment.blocked_until = appointment.ends_at + service.buffer
        if cleaned.get("status", appointment.status) != Appointment.Status.CANCELLED:
            # The admin's change view runs in one transaction, so the therapist's row
            # locked here stays locked until this appointment is saved.
            validate_not_overlapping(appointment=appointment)
            # The room the check chose when staff left it empty (the first suitable free one).
            cleaned["room"] = appointment.room
        return cleaned


class NeedsClearanceFilter(admin.SimpleListFilter):
    title = "intake"
    parameter_name = "clearance"

    def lookups(self, request, model_admin):
        return [("yes", "Needs clearance (a yes in the intake)"), ("no", "No yes in the intake")]

    def queryset(self, request, queryset):
        needing = Appointment.objects.needing_clearance().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=needing)
        if self.value() == "no":
            return queryset.exclude(pk__in=needing)
        return queryset


class SourceArticleFilter(admin.SimpleListFilter):
    title = "came from article"
    parameter_name = "source_article"

    def lookups(self, request, model_admin):
        articles = Article.objects.filter(bookings__isnull=False).distinct().order_by("title")
        return [
            ("any", "From any article"),
            ("none", "Not from an article"),
            *((str(article.pk), article.title) for article in articles),
        ]

    def queryset(self, request, queryset):
        if self.value() == "any":
            return queryset.filter(source_article__isnull=False)
        if self.value() == "none":
            return queryset.filter(source_article__isnull=True)
        if self.value():
            return queryset.filter(source_article_id=self.value())
        return queryset


class CancelReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (the patient reads it in the cancellation email)",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": "Say why: the patient is told the reason."},
    )


class PatientForm(forms.Form):
    """Whose data: the email address the patient booked with (sent by POST, never in a URL)."""

    email = forms.EmailField(label="Patient's email", max_length=254)


class ScheduleForm(forms.Form):
    """The schedule's GET filters; a wrong value falls back to its default."""

    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    view = forms.ChoiceField(
        choices=[(schedule.DAY, "Day"), (schedule.WEEK, "Week")], required=False
    )
    therapist = forms.ChoiceField(required=False)
    by = forms.ChoiceField(
        choices=[(schedule.BY_THERAPIST, "Therapists"), (schedule.BY_ROOM, "Rooms")],
        required=False,
        label="Columns",
    )

    def __init__(self, *args, therapists, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["therapist"].choices = [("", "All therapists")] + [
            (str(therapist.pk), therapist.name) for therapist in therapists
        ]


INTAKE_ANSWERS = {True: "Yes", False: "No", None: "Not asked"}


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    form = AppointmentAdminForm
    list_display = [
        "starts_at",
        "patient_name",
        "service",
        "therapist",
        "room",
        "status",
        "intake_flag",
        "source_article",
    ]
    list_filter = [
        "starts_at",
        "therapist",
        "service",
        "status",
        NeedsClearanceFilter,
        SourceArticleFilter,
    ]
    search_fields = ["patient_name", "patient_email", "patient_phone"]
    date_hierarchy = "starts_at"
    list_select_related = ["service", "therapist", "room", "source_article"]
    readonly_fields = [
        "intake_answers",
        "source_article",
        "created_at",
        "cancelled_at",
        "patient_record",
    ]
    fieldsets = [
        (None, {"fields": ["therapist", "service", "price", "room", "starts_at", "status"]}),
        (
            "Patient",
            {
                "fields": [
                    "patient_name",
                    "patient_email",
                    "patient_phone",
                    "notes",
                    "language",
                    "patient_record",
                ]
            },
        ),
        (
            "Health intake (staff only)",
            {
                "fields": ["intake_answers"],
                "description": "Health data: never copy it into an email, a note or a message.",
            },
        ),
        (
            "Booking",
            {"fields": ["source_article", "created_at", "cancelled_at", "cancellation_reason"]},
        ),
    ]
    actions = ["mark_completed", "mark_no_show", "cancel_selected", "patient_data"]

    @admin.display(description="patient record")
    def patient_record(self, obj):
        """The person's page (visits, health history and consent, newsletter, waitlist)."""
        if obj.patient_id is None:
            return "None yet (made when the patient opens their health-history link)"
        url = reverse("admin:clinic_patient_change", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, obj.patient)

    @admin.display(description="intake")
    def intake_flag(self, obj):
        if obj.needs_clearance:
            return format_html('<strong class="intake-flag">{}</strong>', "Check intake")
        return ""

    @admin.display(description="intake answers")
    def intake_answers(self, obj):
        rows = format_html_join(
            "",
            "<li>{}: <strong>{}</strong></li>",
            (
                (
                    Appointment._meta.get_field(name).verbose_name.capitalize(),
                    INTAKE_ANSWERS[getattr(obj, name)],
                )
                for name in Appointment.INTAKE_FIELDS
            ),
        )
        flag = ""
        if obj.needs_clearance:
            flag = format_html(
                '<p><strong class="intake-flag">{}</strong> {}</p>',
                "Check intake",
                "At least one answer is yes: check before deep work.",
            )
        return format_html('{}<ul class="intake-answers">{}</ul>', flag, rows)

    def delete_model(self, request, obj):
        delete_appointments(appointments=[obj])

    def delete_queryset(self, request, queryset):
        delete_appointments(appointments=list(queryset))

    def save_model(self, request, obj, form, change):
        if obj.consented_to_policy_at is None:
            # A booking staff enter by phone: the patient heard the policy on the call.
            obj.consented_to_policy_at = timezone.now()
        if obj.status == Appointment.Status.CANCELLED and obj.cancelled_at is None:
            obj.cancelled_at = timezone.now()
        before = Appointment.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        record_freed_by_staff_edit(before=before, after=obj)

    # --- the list: actions and the bookings articles brought ---------------------------

    def changelist_view(self, request, extra_context=None):
        top_articles = (
            with_booking_counts(Article.objects.all(), now=timezone.now())
            .filter(bookings_365__gt=0)
            .order_by("-bookings_365", "-bookings_30", "title")[:10]
        )
        extra_context = {
            "article_bookings": top_articles,
            "schedule_url": reverse("admin:booking_appointment_schedule"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def _mark(self, request, queryset, status):
        """Set `status` on the selected confirmed appointments that have begun."""
        selected = queryset.count()
        eligible = mark_attendance(appointments=queryset, status=status)
        changed = len(eligible)
        label = Appointment.Status(status).label.lower()
        for appointment in eligible:
            self.log_change(request, appointment, f"Marked as {label}.")
        message = f"{changed} appointment(s) marked as {label}."
        if selected > changed:
            message += (
                f" {selected - changed} left as they were: only confirmed appointments"
                " that have begun can be marked."
            )
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Mark the selected appointments as completed")
    def mark_completed(self, request, queryset):
        self._mark(request, queryset, Appointment.Status.COMPLETED)

    @admin.action(description="Mark the selected appointments as no-show")
    def mark_no_show(self, request, queryset):
        self._mark(request, queryset, Appointment.Status.NO_SHOW)

    @admin.action(description="Cancel the selected appointments (asks why, emails the patients)")
    def cancel_selected(self, request, queryset):
        """Ask for the reason on a page of its own, then cancel and tell each patient."""
        to_cancel = list(
            queryset.filter(status=Appointment.Status.CONFIRMED).select_related(
                "therapist", "service"
            )
        )
        left_alone = queryset.count() - len(to_cancel)
        if not to_cancel:
            self.message_user(
                request,
                "Nothing cancelled: only confirmed appointments can be cancelled.",
                messages.WARNING,
            )
            return None
        form = CancelReasonForm(request.POST if "confirm_cancel" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            cancelled = 0
            for appointment in to_cancel:
                if cancel_appointment(appointment=appointment, reason=reason, by_staff=True):
                    cancelled += 1
                    self.log_change(request, appointment, f"Cancelled: {reason}")
            message = f"{cancelled} appointment(s) cancelled; each patient was emailed."
            if left_alone:
                message += f" {left_alone} not confirmed, left as they were."
            self.message_user(request, message, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel appointments",
            "opts": self.model._meta,
            "appointments": to_cancel,
            "left_alone": left_alone,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/booking/appointment/cancel_confirmation.html", context
        )

    # --- the schedule ---------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "schedule/",
                self.admin_site.admin_view(self.schedule_view),
                name="booking_appointment_schedule",
            ),
            path(
                "patient/",
                self.admin_site.admin_view(self.patient_view),
                name="booking_appointment_patient",
            ),
            path(
                "patient/export/",
                self.admin_site.admin_view(self.patient_export_view),
                name="booking_appointment_patient_export",
            ),
            path(
                "patient/erase/",
                self.admin_site.admin_view(self.patient_erase_view),
                name="booking_appointment_patient_erase",
            ),
            *super().get_urls(),
        ]

    def schedule_view(self, request):
        """Each therapist's appointments, free time and time off for a day or a week.

        A staff user linked to a therapist sees theirs unless they ask for everyone
        (an empty `therapist`). Five queries for the data, whatever the range.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        therapists = list(Therapist.objects.order_by("display_order", "name"))
        own = next((t for t in therapists if t.user_id == request.user.pk), None)
        data = request.GET.copy()
        if "therapist" not in data:
            data["therapist"] = str(own.pk) if own else ""
        form = ScheduleForm(data, therapists=therapists)
        form.is_valid()
        today = timezone.localdate()
        day = form.cleaned_data.get("date") or today
        view = form.cleaned_data.get("view") or schedule.DAY
        chosen = form.cleaned_data.get("therapist", "")
        shown = [t for t in therapists if str(t.pk) == chosen] if chosen else therapists

        by = form.cleaned_data.get("by") or schedule.BY_THERAPIST

        days = schedule.days_shown(day, view)
        if by == schedule.BY_ROOM:
            schedule_days = schedule.load_room_schedule(
                rooms=list(Room.objects.all()), first_day=days[0], last_day=days[-1]
            )
        else:
            schedule_days = schedule.load_schedule(
                therapists=shown, first_day=days[0], last_day=days[-1]
            )
        if not chosen and by == schedule.BY_THERAPIST:
            # Someone who no longer works here stays off the page unless they have something.
            keep = {
                column.therapist.pk
                for schedule_day in schedule_days
                for column in schedule_day.columns
                if column.therapist.is_active or column.works or column.entries
            }
            for schedule_day in schedule_days:
                schedule_day.columns = [c for c in schedule_day.columns if c.therapist.pk in keep]

        def link(**changes):
            params = {
                "date": day.isoformat(),
                "view": view,
                "therapist": chosen,
                "by": by,
                **changes,
            }
            return "?" + urlencode(params)

        jump = schedule.step(view)
        context = {
            **self.admin_site.each_context(request),
            "title": "Schedule",
            "opts": self.model._meta,
            "form": form,
            "view": view,
            "day": day,
            "days": schedule_days,
            "first_day": days[0],
            "last_day": days[-1],
            "today": today,
            "zone_name": timezone.get_default_timezone_name(),
            "chosen": shown[0] if chosen and shown else None,
            "own": own,
            "by": by,
            "therapist_count": len(
                {
                    c.therapist.pk
                    for d in schedule_days
                    for c in d.columns
                    if hasattr(c, "therapist")
                }
            ),
            "links": {
                "previous": link(date=(day - jump).isoformat()),
                "next": link(date=(day + jump).isoformat()),
                "today": link(date=today.isoformat()),
                "day": link(view=schedule.DAY),
                "week": link(view=schedule.WEEK),
                "everyone": link(therapist=""),
                "by_therapist": link(by=schedule.BY_THERAPIST),
                "by_room": link(by=schedule.BY_ROOM),
                "own": link(therapist=str(own.pk)) if own else None,
            },
        }
        return TemplateResponse(request, "admin/booking/appointment/schedule.html", context)

    # --- one patient's data, on request: export and erase ---------------------------------
    # The address travels by POST only, so it never lands in a URL, a log line or history.

    @admin.action(description="Export or erase the selected appointments' patient")
    def patient_data(self, request, queryset):
        emails = {email.lower() for email in queryset.values_list("patient_email", flat=True)}
        if len(emails) != 1:
            self.message_user(
                request,
                "Select the appointments of one patient (one email address) only.",
                messages.WARNING,
            )
            return None
        return self._patient_page(request, PatientForm({"email": emails.pop()}))

    def _patient_page(self, request, form, status=200):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "A patient's data",
            "opts": self.model._meta,
            "form": form,
            "can_erase": self.has_delete_permission(request),
        }
        if form.is_bound and form.is_valid():
            email = form.cleaned_data["email"]
            context.update(email=email, **personal_data.summary(email=email))
        return TemplateResponse(request, "admin/booking/patient_data.html", context, status=status)

    def patient_view(self, request):
        """Find a patient by email and show what each part of the site holds about them."""
        return self._patient_page(
            request, PatientForm(request.POST if request.method == "POST" else None)
        )

    def patient_export_view(self, request):
        """Download everything held about one patient as JSON (their request for a copy)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PatientForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            return redirect("admin:booking_appointment_patient")
        email = form.cleaned_data["email"]
        data = personal_data.export(email=email)
        for appointment in patient_appointments(email=email):
            self.log_change(request, appointment, "Exported the patient's data on request.")
        response = JsonResponse(
            data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
        response["Content-Disposition"] = 'attachment; filename="patient-data.json"'
        return response

    def patient_erase_view(self, request):
        """Ask once more, then erase what every part of the site holds about the patient
        (their request to be forgotten): clinic.personal_data.erase."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        form = PatientForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            return redirect("admin:booking_appointment_patient")
        email = form.cleaned_data["email"]
        if request.POST.get("confirm_erase") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase a patient's data",
                "opts": self.model._meta,
                "email": email,
                **personal_data.summary(email=email),
            }
            return TemplateResponse(request, "admin/booking/patient_erase.html", context)
        ids = list(patient_appointments(email=email).values_list("pk", flat=True))
        try:
            erased = personal_data.erase(email=email)
        except personal_data.ErasureRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._patient_page(request, form, status=409)
        for appointment in self.model.objects.filter(pk__in=ids):
            self.log_change(request, appointment, "Erased the patient's data on request.")
        self.message_user(
            request,
            f"Erased: {personal_data.describe(erased)}.",
            messages.SUCCESS,
        )
        return redirect("admin:booking_appointment_changelist")


def filled_from_waitlist():
    """Freed times the waitlist filled (a hold turned into an appointment): 30 days, in all."""
    claimed = Hold.objects.filter(state=Hold.State.CLAIMED)
    since = timezone.now() - timedelta(days=30)
    return {
        "filled_30": claimed.filter(appointment__created_at__gte=since).count(),
        "filled_all": claimed.count(),
    }


class WantedOnDayFilter(admin.SimpleListFilter):
    """Who is waiting for a given day: its range covers it and, if the patient chose some
    days, it is one of them. The next two weeks are offered; ?day=YYYY-MM-DD for any other."""

    title = "wanted on"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        today = timezone.localdate()
        days = [today + timedelta(days=n) for n in range(14)]
        return [(day.isoformat(), f"{day:%a %-d %b}") for day in days]

    def queryset(self, request, queryset):
        try:
            day = date.fromisoformat(self.value() or "")
        except ValueError:
            return queryset  # no day, or one that is not a date: the whole list
        return queryset.wanted_on(day)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(admin.ModelAdmin):
    """The waitlist by day and treatment; staff remove an entry or contact its patient."""

    list_display = [
        "name",
        "contact",
        "service",
        "therapist",
        "first_day",
        "last_day",
        "wanted_days",
        "state",
        "joined_at",
    ]
    list_filter = ["state", WantedOnDayFilter, "service", "therapist"]
    date_hierarchy = "first_day"
    search_fields = ["name", "email", "phone"]
    ordering = ["first_day", "service", "joined_at"]
    readonly_fields = ["joined_at"]
    actions = ["take_off_the_list"]

    @admin.display(description="contact")
    def contact(self, obj):
        return format_html(
            '<a href="mailto:{}">{}</a> {}', obj.email, obj.email, obj.phone.as_national
        )

    @admin.display(description="days")
    def wanted_days(self, obj):
        if not obj.days:
            return "every day"
        return ", ".join(f"{date.fromisoformat(day):%a %-d %b}" for day in sorted(obj.days))

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), **filled_from_waitlist()}
        return super().changelist_view(request, extra)

    @admin.action(description="Take the selected entries off the waitlist")
    def take_off_the_list(self, request, queryset):
        for entry in queryset:
            leave_waitlist(entry=entry)
        self.message_user(request, f"{queryset.count()} entr(y/ies) taken off.", messages.SUCCESS)


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin):
    """Freed times held for someone on the waitlist; staff may release one early."""

    list_display = ["starts_at", "therapist", "service", "entry", "state", "expires_at"]
    list_filter = ["state", "therapist"]
    date_hierarchy = "starts_at"
    actions = ["release"]
    readonly_fields = [
        "entry",
        "therapist",
        "service",
        "starts_at",
        "blocked_until",
        "expires_at",
        "state",
        "created_at",
        "appointment",
    ]

    def has_add_permission(self, request):
        return False  # holds come from offers, never typed in

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), **filled_from_waitlist()}
        return super().changelist_view(request, extra)

    @admin.action(description="Release the selected holds (offer the time to the next in line)")
    def release(self, request, queryset):
        released = sum(release_hold(hold=hold) for hold in queryset.filter(state=Hold.State.ACTIVE))
        self.message_user(request, f"{released} hold(s) released.", messages.SUCCESS)


class UnconfirmedHistoryFilter(admin.SimpleListFilter):
    """Versions signed before anyone proved they hold the address that are now on its
    confirmed record (HealthHistory.unconfirmed): the ones to check with the patient."""

    title = "unconfirmed"
    parameter_name = "unconfirmed"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Signed before the email was confirmed, now on a confirmed record"),
            ("no", "No"),
        ]

    def queryset(self, request, queryset):
        unconfirmed = Q(signed_with_proven_address=False, patient__verified_at__isnull=False)
        if self.value() == "yes":
            return queryset.filter(unconfirmed)
        if self.value() == "no":
            return queryset.exclude(unconfirmed)
        return queryset


@admin.register(HealthHistory)
class HealthHistoryAdmin(admin.ModelAdmin):
    """Every signed version, read-only (signed is locked; erasing goes through the patient's
    page). The list names no health answer: they are on the version's own page and the
    patient's."""

    list_display = [
        "signed_at",
        "patient_record",
        "signed_name",
        "consent_version",
        "signed_with_proven_address",
        "unconfirmed_flag",
    ]
    list_filter = [UnconfirmedHistoryFilter, "signed_with_proven_address", "signed_at"]
    list_select_related = ["patient", "consent_text"]
    date_hierarchy = "signed_at"

    def has_add_permission(self, request):
        return False  # patients sign from their link

    def has_change_permission(self, request, obj=None):
        return False  # a signed version is locked

    def has_delete_permission(self, request, obj=None):
        return False  # "Erase this patient" on the patient's page

    @admin.display(description="patient record", ordering="patient__name")
    def patient_record(self, obj):
        url = reverse("admin:clinic_patient_change", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, obj.patient)

    @admin.display(description="consent version", ordering="consent_text__version")
    def consent_version(self, obj):
        return obj.consent_text.version

    @admin.display(description="check")
    def unconfirmed_flag(self, obj):
        if obj.unconfirmed:
            return format_html(
                '<strong class="history-flag history-unconfirmed">{}</strong>: {}',
                "History unconfirmed",
                "signed before the email was confirmed; check it with the patient",
            )
        return ""


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin):
    """The consent patients sign with their health history. A saved version is never edited
    (signatures name it): staff change the wording by adding a new version, which the form
    shows from then on."""

    list_display = ["version", "created_at", "signatures_count"]
    fields = ["text", "text_es"]

    @admin.display(description="signed")
    def signatures_count(self, obj):
        return obj.signatures.count()

    def get_changeform_initial_data(self, request):
        latest = ConsentText.current()
        return {"text": latest.text, "text_es": latest.text_es} if latest else {}

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        published = publish_consent_text(text=obj.text, text_es=obj.text_es)
        obj.pk, obj.version = published.pk, published.version
