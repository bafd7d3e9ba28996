from django.contrib import admin, messages

from . import mail
from .forms import WeeklyIntervalFormSet
from .i18n import field_name, other_languages
from .models import ClinicProfile, Closure, OpeningHours, OutgoingEmail


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
