"""The details step: who is booking. Validates input only; booking is services' work."""

import re
from datetime import date, timedelta

from django import forms
from django.utils import formats
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

SUBMISSION_KEY = re.compile(r"^[0-9a-f]{32}$")
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The second person's fields of a treatment for two are the first's names with this before.
COMPANION = "companion_"

YES_NO = {
    "choices": [("yes", _("Yes")), ("no", _("No"))],
    "coerce": lambda value: value == "yes",
    "widget": forms.RadioSelect,
    "error_messages": {"required": _("Please answer yes or no.")},
}


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
    source = forms.SlugField(required=False, max_length=200, widget=forms.HiddenInput)
    # A waitlist offer's signed token: the time is held for whoever carries it.
    offer = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    submission_key = forms.RegexField(
        regex=SUBMISSION_KEY,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _("This form arrived damaged. Check your details and book again."),
            "required": _("This form arrived damaged. Check your details and book again."),
        },
    )

    # Health questions: what makes deep calf work unsafe without a doctor's clearance.
    # The answers are health data: staff see them; no email, log, URL or cache key does.
    intake_clot_signs = forms.TypedChoiceField(
        label=_(
            "Do you have new swelling, warmth, redness or pain at rest in a calf "
            "(possible signs of a blood clot)?"
        ),
        **YES_NO,
    )
    intake_surgery_or_immobility = forms.TypedChoiceField(
        label=_(
            "Have you had surgery, or been unable to move about for a long time "
            "(bed rest, a cast, a long journey), in the last 3 months?"
        ),
        **YES_NO,
    )
    intake_blood_thinners = forms.TypedChoiceField(
        label=_("Do you take blood thinners (anticoagulants)?"), **YES_NO
    )
    intake_pregnant = forms.TypedChoiceField(
        label=_("Are you pregnant, or could you be?"), **YES_NO
    )

    INTAKE_FIELDS = (
        "intake_clot_signs",
        "intake_surgery_or_immobility",
        "intake_blood_thinners",
        "intake_pregnant",
    )

    def __init__(
        self,
        *args,
        slot_choices,
        offer_times=False,
        intake_fields=INTAKE_FIELDS,
        for_two=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # Only the questions staff chose for this treatment are asked (or read from a POST).
        for name in self.INTAKE_FIELDS:
            if name not in intake_fields:
                del self.fields[name]
        # A treatment for two: the second person's name (optional) and their own answers.
        self.for_two = for_two
        if for_two:
            self.fields["companion_name"] = forms.CharField(
                label=_("Name of the second person (optional)"), max_length=120, required=False
            )
            for name in self.INTAKE_FIELDS:
                if name in self.fields:
                    self.fields[COMPANION + name] = forms.TypedChoiceField(
                        label=self.fields[name].label, **YES_NO
                    )
        # Normally the time chosen on the previous step rides along hidden; after a lost
        # race the patient picks one of the fresh times offered instead.
        self.fields["slot"].widget = forms.RadioSelect() if offer_times else forms.HiddenInput()
        self.fields["slot"].choices = slot_choices
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        # The input type is the widget's own, never an attribute: "type" in attrs would be
        # written a second time on the tag (invalid HTML).
        self.fields["phone"].widget.input_type = "tel"
        self.fields["phone"].widget.attrs["autocomplete"] = "tel"

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError(_("Enter your name."))
        return name

    def intake_answers(self):
        """The answers to the questions asked; a question not asked is None (not asked)."""
        return {name: self.cleaned_data.get(name) for name in self.INTAKE_FIELDS}

    def intake_questions(self):
        return [self[name] for name in self.INTAKE_FIELDS if name in self.fields]

    def companion_questions(self):
        return [self[COMPANION + n] for n in self.INTAKE_FIELDS if COMPANION + n in self.fields]

    def clean_companion_name(self):
        name = " ".join(self.cleaned_data["companion_name"].split())
        if any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError(_("Enter the name without control characters."))
        return name

    def companion_details(self):
        """The second person of a treatment for two, as book_appointment takes it (None
        for a treatment for one)."""
        if not self.for_two:
            return None
        from .services import PatientDetails

        return PatientDetails(
            name=self.cleaned_data.get("companion_name", ""),
            email="",
            phone="",
            intake={n: self.cleaned_data.get(COMPANION + n) for n in self.INTAKE_FIELDS},
        )

    def patient_details(self):
        """Who is booking, as book_appointment takes it."""
        from .services import PatientDetails

        return PatientDetails(
            name=self.cleaned_data["name"],
            email=self.cleaned_data["email"],
            phone=self.cleaned_data["phone"],
            notes=self.cleaned_data["notes"],
            intake=self.intake_answers(),
        )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class ChosenDaysField(forms.MultipleChoiceField):
    """Ticked days as ISO dates. The checkboxes offered are only a window; any day is read
    and checked by WaitlistForm.clean_days, with a message saying what is wrong with it."""

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class WaitlistForm(forms.Form):
    """Joining the waitlist: which days (a range, or days ticked one by one) and parts of
    the day would suit, and who to tell."""

    PARTS = [
        ("morning", _("Morning (before noon)")),
        ("afternoon", _("Afternoon (noon to 5 PM)")),
        ("evening", _("Evening (from 5 PM)")),
    ]
    RANGE, DAYS = "range", "days"
    MAX_DAYS = 31  # beyond that, a range says it better

    when = forms.ChoiceField(
        label=_("Which days suit you?"),
        choices=[(DAYS, _("Only the days I tick")), (RANGE, _("Any day between two dates"))],
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a date range or days to tick."),
            "invalid_choice": _("Choose a date range or days to tick."),
        },
    )
    first_day = forms.DateField(
        label=_("First day that suits you"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter a date like 2027-03-01.")},
    )
    last_day = forms.DateField(
        label=_("Last day that suits you"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The same day as above for one day only."),
        error_messages={"invalid": _("Enter a date like 2027-03-01.")},
    )
    days = ChosenDaysField(
        label=_("Days that suit you"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    parts = forms.MultipleChoiceField(
        label=_("Which parts of the day suit you?"),
        choices=PARTS,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one part of the day.")},
    )
    name = forms.CharField(label=_("Your name"), max_length=120)
    email = forms.EmailField(
        label=_("Email"), max_length=254, help_text=_("We write here when a time frees up.")
    )
    phone = PhoneNumberField(label=_("Phone"), region="US")

    def __init__(self, *args, first_allowed, last_allowed, listed_days=(), **kwargs):
        """`listed_days`: the days offered as checkboxes; days sent that are not among them
        are shown too (ticked), so nothing the patient chose disappears."""
        super().__init__(*args, **kwargs)
        self.first_allowed, self.last_allowed = first_allowed, last_allowed
        shown = set(listed_days)

        # Translators: a day to tick, "Mon 14 Dec" (Django's date format letters).
        short, long = gettext("D j M"), gettext("D j M Y")

        def near(day):  # the year goes without saying
            return first_allowed <= day <= first_allowed + timedelta(days=300)

        if self.is_bound:
            sent = self.fields["days"].widget.value_from_datadict(
                self.data, self.files, self.add_prefix("days")
            )
            for raw in (sent or [])[: self.MAX_DAYS + 1]:
                day = _iso_day(raw)
                if day is not None:
                    shown.add(day)
        self.fields["days"].choices = [
            (day.isoformat(), formats.date_format(day, short if near(day) else long))
            for day in sorted(shown)
        ]

    def clean_days(self):
        raw = self.cleaned_data.get("days") or []
        if len(set(raw)) > self.MAX_DAYS:
            raise forms.ValidationError(
                _("Tick at most %(count)s days, or choose a date range instead.")
                % {"count": self.MAX_DAYS}
            )
        days = {_iso_day(value) for value in raw}
        if None in days:
            raise forms.ValidationError(_("Tick days from the list."))
        if any(day < self.first_allowed for day in days):
            raise forms.ValidationError(_("Choose days from today on."))
        if any(day > self.last_allowed for day in days):
            raise forms.ValidationError(
                _("Online booking is open up to %(day)s.") % {"day": self.last_allowed.isoformat()}
            )
        return sorted(days)

    def clean(self):
        cleaned = super().clean()
        when = cleaned.get("when")
        if when == self.DAYS:
            days = cleaned.get("days")
            if days:
                cleaned["first_day"], cleaned["last_day"] = days[0], days[-1]
            elif "days" not in self.errors:
                self.add_error("days", _("Tick at least one day."))
        elif when == self.RANGE:
            cleaned["days"] = []  # the ticks belong to the other choice
            self._clean_range(cleaned)
        return cleaned

    def _clean_range(self, cleaned):
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        for name, value in (("first_day", first), ("last_day", last)):
            if value is None and name not in self.errors:
                self.add_error(name, _("Enter a date like 2027-03-01."))
        if first and first < self.first_allowed:
            self.add_error("first_day", _("Choose a day from today on."))
        if last and last > self.last_allowed:
            self.add_error(
                "last_day",
                _("Online booking is open up to %(day)s.") % {"day": self.last_allowed.isoformat()},
            )
        if first and last and last < first:
            self.add_error("last_day", _("The last day cannot be before the first."))


def _iso_day(raw):
    """A YYYY-MM-DD string as a date, or None for anything else."""
    if not isinstance(raw, str) or not ISO_DAY.fullmatch(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


class LeaveWaitlistForm(forms.Form):
    """Nothing to fill in: the signed link says who; the button is the POST that leaves."""


class HealthHistoryForm(forms.Form):
    """The health history and consent, signed by typing one's full name and ticking agreement.
    Health data: it travels by POST only and is shown to staff and its patient only."""

    conditions = forms.CharField(
        label=_("Health conditions (optional)"),
        help_text=_("Anything a therapist should know: injuries, illnesses, recent treatment."),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    medications = forms.CharField(
        label=_("Medications you take (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    areas_to_avoid = forms.CharField(
        label=_("Areas of the body to avoid (optional)"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    pressure = forms.ChoiceField(
        label=_("Pressure you prefer"),
        choices=[
            ("light", _("Light")),
            ("medium", _("Medium")),
            ("firm", _("Firm")),
            ("ask", _("Ask me during the visit")),
        ],
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose the pressure you prefer."),
            "invalid_choice": _("Choose the pressure you prefer."),
        },
    )
    emergency_name = forms.CharField(
        label=_("Emergency contact's name"),
        max_length=120,
        error_messages={"required": _("Give someone we can call in an emergency.")},
    )
    emergency_phone = PhoneNumberField(
        label=_("Emergency contact's phone"),
        region="US",
        error_messages={"required": _("Give your emergency contact's phone number.")},
    )
    intake_clot_signs = DetailsForm.base_fields["intake_clot_signs"]
    intake_surgery_or_immobility = DetailsForm.base_fields["intake_surgery_or_immobility"]
    intake_blood_thinners = DetailsForm.base_fields["intake_blood_thinners"]
    intake_pregnant = DetailsForm.base_fields["intake_pregnant"]
    consent_version = forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        max_value=2**31 - 1,
        error_messages={
            "invalid": _("This form arrived damaged. Read the consent below and sign again."),
            "required": _("This form arrived damaged. Read the consent below and sign again."),
            "min_value": _("This form arrived damaged. Read the consent below and sign again."),
            "max_value": _("This form arrived damaged. Read the consent below and sign again."),
        },
    )
    signed_name = forms.CharField(
        label=_("Type your full name to sign"),
        max_length=120,
        error_messages={"required": _("Type your full name to sign.")},
    )
    agree = forms.BooleanField(
        label=_("I have read the consent above and agree to it."),
        error_messages={"required": _("Tick the box to agree to the consent.")},
    )

    INTAKE_FIELDS = DetailsForm.INTAKE_FIELDS
    TEXT_FIELDS = ("conditions", "medications", "areas_to_avoid", "emergency_name", "signed_name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signed_name"].widget.attrs["autocomplete"] = "name"
        self.fields["emergency_phone"].widget.input_type = "tel"
        self.fields["emergency_phone"].widget.attrs["autocomplete"] = "off"

    def clean(self):
        cleaned = super().clean()
        # A NUL or other control character cannot be stored (PostgreSQL refuses a NUL) and
        # never belongs in a history: refused with a message, the rest kept.
        for name in self.TEXT_FIELDS:
            value = cleaned.get(name)
            if value and any(ord(ch) < 32 and ch not in "\r\n\t" for ch in value):
                self.add_error(name, _("Remove the unusual characters from this answer."))
        for name in ("emergency_name", "signed_name"):
            if cleaned.get(name):
                cleaned[name] = " ".join(cleaned[name].split())
                if not cleaned[name]:
                    self.add_error(name, _("Type your full name to sign."))
        return cleaned

    def intake_questions(self):
        return [self[name] for name in self.INTAKE_FIELDS]

    def answers(self):
        """The history's content, as booking.health.sign_health_history takes it."""
        data = self.cleaned_data
        return {
            "conditions": data["conditions"],
            "medications": data["medications"],
            "areas_to_avoid": data["areas_to_avoid"],
            "pressure": data["pressure"],
            "emergency_name": data["emergency_name"],
            "emergency_phone": data["emergency_phone"],
            **{name: data[name] for name in self.INTAKE_FIELDS},
        }

    @classmethod
    def initial_from(cls, history):
        """A new version starts from the last one (not its signature: each is signed anew)."""
        if history is None:
            return {}
        return {
            "conditions": history.conditions,
            "medications": history.medications,
            "areas_to_avoid": history.areas_to_avoid,
            "pressure": history.pressure,
            "emergency_name": history.emergency_name,
            "emergency_phone": history.emergency_phone,
            **{name: "yes" if getattr(history, name) else "no" for name in cls.INTAKE_FIELDS},
        }
