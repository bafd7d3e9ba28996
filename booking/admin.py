from django import forms
from django.contrib import admin

from clinic.forms import WeeklyIntervalFormSet

from .models import Appointment, BookingRules, Service, Therapist, TimeOff, WorkingHours
from .services import validate_not_overlapping


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "duration_minutes", "buffer_minutes", "price", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["is_active"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


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
            "starts_at",
            "status",
            "patient_name",
            "patient_email",
            "patient_phone",
            "notes",
            "cancellation_reason",
        ]

    def clean(self):
        cleaned = super().clean()
        therapist, service = cleaned.get("therapist"), cleaned.get("service")
        starts_at = cleaned.get("starts_at")
        if not (therapist and service and starts_at):
            return cleaned
        appointment = self.instance
        appointment.therapist, appointment.service = therapist, service
        appointment.starts_at = starts_at
        appointment.ends_at = starts_at + service.duration
        appointment.blocked_until = appointment.ends_at + service.buffer
        if cleaned.get("status", appointment.status) != Appointment.Status.CANCELLED:
            # The admin's change view runs in one transaction, so the therapist's row
            # locked here stays locked until this appointment is saved.
            validate_not_overlapping(appointment=appointment)
        return cleaned


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    form = AppointmentAdminForm
    list_display = ["starts_at", "patient_name", "service", "therapist", "status"]
    list_filter = ["status", "therapist", "service"]
    search_fields = ["patient_name", "patient_email", "patient_phone"]
    date_hierarchy = "starts_at"
    list_select_related = ["service", "therapist"]

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        if obj.consented_to_policy_at is None:
            # A booking staff enter by phone: the patient heard the policy on the call.
            obj.consented_to_policy_at = timezone.now()
        if obj.status == Appointment.Status.CANCELLED and obj.cancelled_at is None:
            obj.cancelled_at = timezone.now()
        super().save_model(request, obj, form, change)
