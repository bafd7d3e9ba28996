"""The details step: who is booking. Validates input only; booking is services' work."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

SUBMISSION_KEY = re.compile(r"^[0-9a-f]{32}$")


class DetailsForm(forms.Form):
    slot = forms.ChoiceField(
        label=_("Time"),
        error_messages={"invalid_choice": _("Choose one of the times offered.")},
    )
    name = forms.CharField(label=_("Your name"), max_length=120)
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        help_text=_("Your confirmation goes here."),
    )
    phone = PhoneNumberField(
        label=_("Phone"),
        region="US",
        help_text=_("In case we need to reach you about the visit."),
    )
    notes = forms.CharField(
        label=_("Anything we should know? (optional)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    consent = forms.BooleanField(
        label=_("I have read and agree to the cancellation policy."),
        error_messages={"required": _("Please agree to the cancellation policy to book.")},
    )
    submission_key = forms.RegexField(
        regex=SUBMISSION_KEY,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _("This form arrived damaged. Check your details and book again."),
            "required": _("This form arrived damaged. Check your details and book again."),
        },
    )

    def __init__(self, *args, slot_choices, offer_times=False, **kwargs):
        super().__init__(*args, **kwargs)
        # Normally the time chosen on the previous step rides along hidden; after a lost
        # race the patient picks one of the fresh times offered instead.
        self.fields["slot"].widget = forms.RadioSelect() if offer_times else forms.HiddenInput()
        self.fields["slot"].choices = slot_choices
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "type": "tel"})

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError(_("Enter your name."))
        return name
