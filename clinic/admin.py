from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from . import mail, patients, personal_data
from .forms import WeeklyIntervalFormSet
from .i18n import field_name, other_languages
from .models import ClinicProfile, Closure, OpeningHours, OutgoingEmail, Patient


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    formset = WeeklyIntervalFormSet
    extra = 0


class ClosureInline(admin.TabularInline):
    model = Closure
    extra = 0


def _in_every_language(*fields):
    """Each field, then its column in each other language of settings.LANGUAGES."""
    return [
        *fields,
        *(
            field_name(field, code)
            for code in other_languages()
            for field in fields
            if hasattr(ClinicProfile, field_name(field, code))
        ),
    ]


@admin.register(ClinicProfile)
class ClinicProfileAdmin(admin.ModelAdmin):
    inlines = [OpeningHoursInline, ClosureInline]
    fieldsets = [
        (None, {"fields": ["name", *_in_every_language("tagline", "introduction")]}),
        ("Before your visit", {"fields": _in_every_language("before_visit")}),
        ("Contact", {"fields": ["phone", "email"]}),
        (
            "Address",
            {
                "fields": [
                    "street_address",
                    "locality",
                    "region",
                    "postal_code",
                    "country",
                    "map_url",
                ]
            },
        ),
    ]

    def has_add_permission(self, request):
        # One clinic, one profile: staff edit it, never add a second.
        return not ClinicProfile.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(admin.ModelAdmin):
    list_display = [
        "subject",
        "recipients",
        "category",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["state", "category"]
    search_fields = ["subject", "to", "idempotency_key"]
    readonly_fields = [f.name for f in OutgoingEmail._meta.fields]
    actions = ["send_again"]

    @admin.display(description="to")
    def recipients(self, obj):
        return ", ".join(obj.to)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Try sending the selected unsent emails again")
    def send_again(self, request, queryset):
        count = mail.retry_emails(emails=queryset)
        self.message_user(request, f"{count} email(s) will be sent again.", messages.SUCCESS)


class MergeForm(forms.Form):
    """Which of two records of one person stays (the other's everything moves to it)."""

    keep = forms.ChoiceField(label="Keep this record", widget=forms.RadioSelect)

    def __init__(self, *args, records, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(str(p.pk), str(p)) for p in records]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """One page per patient: visits past and upcoming, no-shows and late cancellations, the
    health history and consent with their versions, the newsletter and the waitlist (each app
    shows its own part, clinic.personal_data); export, erase and merge."""

    list_display = ["name", "email", "phone", "verified_at", "last_seen_at"]
    list_filter = [("verified_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "email", "phone", "other_emails"]
    # The address is what the patient proved: staff merge records rather than retype it.
    readonly_fields = ["email", "created_at", "verified_at", "last_seen_at", "other_emails"]
    fields = ["name", "phone", "language", *readonly_fields]
    actions = ["merge"]
    change_form_template = "admin/clinic/patient/change_form.html"

    def has_add_permission(self, request):
        return False  # records come from bookings

    def has_delete_permission(self, request, obj=None):
        return False  # "Erase this patient" goes through every app's part

    def get_urls(self):
        return [
            path(
                "<int:pk>/export/",
                self.admin_site.admin_view(self.export_view),
                name="clinic_patient_export",
            ),
            path(
                "<int:pk>/erase/",
                self.admin_site.admin_view(self.erase_view),
                name="clinic_patient_erase",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        patient = self.get_object(request, object_id)
        extra = {}
        if patient is not None:
            refusals = [
                reason
                for email in patient.emails
                for reason in personal_data.summary(email=email)["refusals"]
            ]
            extra = {
                "held_parts": personal_data.patient_summary(patient=patient),
                "refusals": refusals,
                "can_erase": request.user.has_perm("clinic.change_patient"),
            }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def _patient_or_404(self, request, pk):
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        patient = Patient.objects.filter(pk=pk).first()
        if patient is None:
            raise Http404
        return patient

    def export_view(self, request, pk):
        """Everything held about this person, under every address they are known by."""
        patient = self._patient_or_404(request, pk)
        data = personal_data.export_patient(patient=patient)
        self.log_change(request, patient, "Exported the patient's data on request.")
        response = JsonResponse(
            data, encoder=DjangoJSONEncoder, json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
        response["Content-Disposition"] = 'attachment; filename="patient-data.json"'
        return response

    def erase_view(self, request, pk):
        """Erase this person (every address, every app's part, the record): asked once more."""
        patient = self._patient_or_404(request, pk)
        if request.POST.get("confirm_erase") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase a patient's data",
                "opts": self.model._meta,
                "patient": patient,
                "parts": personal_data.summary(email=patient.email)["parts"],
            }
            return TemplateResponse(request, "admin/clinic/patient/erase.html", context)
        try:
            erased = personal_data.erase_patient(patient=patient)
        except personal_data.ErasureRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect("admin:clinic_patient_change", patient.pk)
        self.message_user(request, f"Erased: {personal_data.describe(erased)}.", messages.SUCCESS)
        return redirect("admin:clinic_patient_changelist")

    @admin.action(description="Merge the two selected records (one person)")
    def merge(self, request, queryset):
        records = list(queryset.order_by("pk"))
        if len(records) != 2:
            self.message_user(request, "Select exactly two records to merge.", messages.WARNING)
            return None
        form = MergeForm(
            request.POST if "keep" in request.POST else None,
            records=records,
            initial={"keep": str(max(records, key=lambda p: (p.verified_at is not None, p.pk)).pk)},
        )
        if form.is_valid():
            keep = next(p for p in records if str(p.pk) == form.cleaned_data["keep"])
            other = next(p for p in records if p is not keep)
            merged_name = str(other)
            patients.merge_patients(keep=keep, other=other)
            self.log_change(request, keep, f"Merged {merged_name} into this record.")
            self.message_user(request, f"Merged into {keep}.", messages.SUCCESS)
            return redirect("admin:clinic_patient_change", keep.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge two patient records",
            "opts": self.model._meta,
            "records": records,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request,
            "admin/clinic/patient/merge.html",
            context,
            status=400 if form.is_bound else 200,
        )
