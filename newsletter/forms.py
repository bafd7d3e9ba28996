"""The sign-up form: an email address, and a honeypot that people never see."""

from django import forms
from django.utils.translation import gettext_lazy as _


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Your email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    # Hidden from people (and screen readers); a bot that fills every field fills this.
    website = forms.CharField(required=False, max_length=200)
    # The page the form was on (part of the consent record): a path on this site.
    page = forms.CharField(required=False, max_length=500)

    def clean_page(self):
        page = self.cleaned_data["page"]
        if not page.startswith("/") or page.startswith("//") or any(ord(c) < 32 for c in page):
            return ""
        return page

    @property
    def is_bot(self):
        return bool(self.cleaned_data.get("website"))
