"""Staff sign-in: the lockout page, the two-factor login form and setting up a device.

django-axes counts failed passwords and locks a (username, address) pair for a while;
django-otp's TOTP devices are the second factor, required when STAFF_REQUIRE_2FA is on.
"""

import math
from base64 import b32encode

import segno
from axes.admin import AccessAttemptAdmin
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp import login as otp_login
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from .locking import lock

DEVICE_NAME = "Authenticator app"


def two_factor_required():
    """Read at each request, so a test (or an operator's override) takes effect at once."""
    return settings.STAFF_REQUIRE_2FA


def client_address(request):
    """The client's address as the proxy in front sets it (never a header a client sends)."""
    return request.META.get("REMOTE_ADDR", "")


def confirmed_device(user):
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def needs_device_setup(request):
    """A staff member signed in with a password who has no device yet, while one is required."""
    user = request.user
    return (
        two_factor_required()
        and user.is_active
        and user.is_staff
        and not user.is_verified()
        and confirmed_device(user) is None
    )


# --- lockout ------------------------------------------------------------------------
def lockout_minutes():
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked sign-in: the admin's look, 429 and Retry-After."""
    context = {
        **admin.site.each_context(request),
        "title": _("Sign-in locked"),
        "minutes": lockout_minutes(),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    response = render(request, "admin/staff/locked_out.html", context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


class StaffAccessAttemptAdmin(AccessAttemptAdmin):
    """axes' failed sign-ins, with an action that unlocks the selected ones."""

    actions = ["unlock", *AccessAttemptAdmin.actions]

    @admin.action(description=_("Unlock the selected sign-ins"), permissions=["delete"])
    def unlock(self, request, queryset):
        # axes counts failures in these rows: without them the pair may sign in again.
        count, _deleted = queryset.delete()
        self.message_user(
            request,
            ngettext("%(count)d sign-in unlocked.", "%(count)d sign-ins unlocked.", count)
            % {"count": count},
            messages.SUCCESS,
        )


# --- signing in with a second factor -------------------------------------------------
class StaffLoginForm(OTPAdminAuthenticationForm):
    """The admin's login form; asks for the app's code when 2FA is required.

    A staff member without a device signs in with the password alone and is then sent to
    set one up (ClinicAdminSite); one with a device must give the current code.
    """

    otp_token = forms.CharField(
        required=False,
        label=_("Authentication code"),
        help_text=_(
            "The 6-digit code your authenticator app shows (leave empty if you have none yet)."
        ),
        max_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": _("Enter the 6-digit code from your authenticator app."),
        "invalid_token": _(
            "That code is not right. Enter the code your authenticator app shows now."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        for name in ("otp_device", "otp_challenge"):
            del self.fields[name]  # one kind of device: TOTP, chosen for the user
        if not two_factor_required():
            del self.fields["otp_token"]

    def clean(self):
        cleaned_data = super(OTPAdminAuthenticationForm, self).clean()  # the password
        user = self.get_user()
        if two_factor_required() and user is not None and confirmed_device(user):
            self.clean_otp(user)
        return cleaned_data

    def _chosen_device(self, user):
        return confirmed_device(user)


# --- setting up a device -------------------------------------------------------------
class DeviceConfirmForm(forms.Form):
    token = forms.CharField(
        label=_("Code from the app"),
        max_length=8,  # room for a space typed in the middle
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def start_totp_setup(*, user):
    """The user's unconfirmed device (a new secret the first time; the same one on reload)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


class WrongCode(Exception):
    """The code did not confirm the device; the message says why."""


def confirm_totp_device(*, device, token):
    """Mark `device` confirmed if `token` is its current code, else raise WrongCode."""
    refusal = None
    with transaction.atomic():
        (device,) = lock(TOTPDevice.objects.filter(pk=device.pk))
        allowed, _why = device.verify_is_allowed()
        if not allowed:
            # Each wrong code doubles the wait before the next is even checked.
            refusal = _("Too many wrong codes in a row: wait a few seconds, then try again.")
        elif not device.verify_token(token):
            # Raised after the block: the failure count it just saved must be kept.
            refusal = _(
                "That code is not right. Check the app's clock and enter the code it shows now."
            )
        else:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # Other unconfirmed secrets (an abandoned setup) must not linger.
            TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    if refusal:
        raise WrongCode(refusal)
    return device


def grouped_key(device):
    """The base32 secret in groups of four, for typing into an app by hand."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def two_factor_setup(request, site):
    """Show the secret as a QR code and a key, then confirm the device with a first code."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return redirect("admin:login")
    if confirmed_device(user) is not None:
        if user.is_verified() or not two_factor_required():
            messages.info(request, _("Two-factor sign-in is already set up for your account."))
            return redirect("admin:index")
        # A password-only session must never add a second device: sign in with the code.
        return redirect("admin:login")

    device = start_totp_setup(user=user)
    form = DeviceConfirmForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                device = confirm_totp_device(device=device, token=form.cleaned_data["token"])
            except WrongCode as refusal:
                form.add_error("token", str(refusal))
            else:
                otp_login(request, device)
                messages.success(request, _("Two-factor sign-in is set up."))
                return redirect("admin:index")
        status = 400

    qr = segno.make(device.config_url, error="m")
    context = {
        **site.each_context(request),
        "title": _("Set up two-factor sign-in"),
        "form": form,
        # Dark on white whatever the admin's theme, or a phone cannot read it in dark mode.
        "qr_svg": qr.svg_inline(
            scale=5,
            border=4,
            dark="#000",
            light="#fff",
            title=str(_("QR code of your sign-in key")),
        ).replace("<svg ", '<svg role="img" ', 1),
        "key": grouped_key(device),
        # Nothing else is reachable yet, so the sidebar would only show dead ends.
        "available_apps": [],
        "is_nav_sidebar_enabled": False,
    }
    return render(request, "admin/staff/two_factor_setup.html", context, status=status)
