"""Staff accounts: wrong passwords lock a sign-in, staff unlock it, a second factor."""

from base64 import b32encode
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")
SETUP = reverse("admin:two_factor_setup")
ATTEMPTS = reverse("admin:axes_accessattempt_changelist")
PASSWORD = "a-long-staff-password"


def sign_in(client, password=PASSWORD, username="staffer", address="203.0.113.7", **extra):
    return client.post(
        f"{LOGIN}?next={INDEX}",
        {"username": username, "password": password, "next": INDEX, **extra},
        REMOTE_ADDR=address,
    )


def can_reach_index(client):
    return client.get(INDEX).status_code == 200


def code(device):
    """The device's 6-digit code now (time-machine's now too), as the app shows it."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


# --- lockout -------------------------------------------------------------------------
def test_thirty_wrong_passwords_lock_the_sign_in_after_five(client, clinic, staff_user):
    statuses = [sign_in(client, password=f"guess-{n}").status_code for n in range(30)]

    assert statuses[:4] == [200] * 4  # the form again, "enter a correct password"
    assert set(statuses[4:]) == {429}
    locked = sign_in(client)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Sign-in is locked for 15 minutes" in page
    assert "ask another staff member to unlock you" in page
    assert locked["Retry-After"] == "900"
    assert not can_reach_index(client)


def test_the_lockout_holds_one_address_and_one_name_only(
    client, clinic, staff_user, django_user_model
):
    django_user_model.objects.create_user(
        username="colleague", password=PASSWORD, is_staff=True, is_superuser=True
    )
    for n in range(5):
        sign_in(client, password=f"guess-{n}")
    assert sign_in(client).status_code == 429

    # An attacker guessing at a name cannot lock its owner out from everywhere, nor lock
    # out a colleague behind the same address.
    assert sign_in(client, address="198.51.100.20").status_code == 302
    client.logout()
    assert sign_in(client, username="colleague").status_code == 302


def test_the_lock_lifts_by_itself_after_fifteen_minutes(client, clinic, staff_user):
    for n in range(5):
        sign_in(client, password=f"guess-{n}")
    with time_machine.travel(timezone.now() + timedelta(minutes=14), tick=False):
        assert sign_in(client).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(minutes=30), tick=False):
        assert sign_in(client).status_code == 302
        assert can_reach_index(client)


def test_a_superuser_unlocks_a_locked_sign_in_from_the_admin(
    client, clinic, staff_user, django_user_model
):
    for n in range(5):
        sign_in(client, password=f"guess-{n}")
    assert sign_in(client).status_code == 429

    boss = django_user_model.objects.create_superuser(username="boss", password=PASSWORD)
    admin_client = client.__class__()
    admin_client.force_login(boss)
    assert "Access attempts" in admin_client.get(INDEX).content.decode()
    listing = admin_client.get(ATTEMPTS)
    assert listing.status_code == 200 and "Locked Out" in listing.content.decode()
    response = admin_client.post(
        ATTEMPTS,
        {
            "action": "unlock",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
        },
        follow=True,
    )
    assert "1 sign-in unlocked." in response.content.decode()

    assert sign_in(client).status_code == 302
    assert can_reach_index(client)


def test_a_right_password_clears_earlier_failures(client, clinic, staff_user):
    for n in range(4):
        sign_in(client, password=f"guess-{n}")
    assert sign_in(client).status_code == 302
    client.logout()
    for n in range(4):
        assert sign_in(client, password=f"again-{n}").status_code == 200


# --- two-factor sign-in ----------------------------------------------------------------
@pytest.fixture
def require_2fa(settings):
    settings.STAFF_REQUIRE_2FA = True


@pytest.fixture
def device(staff_user):
    return TOTPDevice.objects.create(user=staff_user, name="Phone", confirmed=True)


def test_password_alone_does_not_open_the_admin_for_staff_with_a_device(
    client, clinic, device, require_2fa
):
    response = sign_in(client)
    assert response.status_code == 200
    assert "Enter the 6-digit code from your authenticator app." in response.content.decode()
    assert not can_reach_index(client)


def test_the_current_code_opens_the_admin(client, clinic, device, require_2fa):
    response = sign_in(client, otp_token=code(device))
    assert response.status_code == 302 and response.url == INDEX
    assert can_reach_index(client)


def test_a_wrong_code_is_refused_with_a_message(client, clinic, device, require_2fa):
    right = code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = sign_in(client, otp_token=wrong)
    assert response.status_code == 200
    assert "That code is not right." in response.content.decode()
    assert not can_reach_index(client)


def test_the_login_page_asks_for_the_code_only_when_2fa_is_required(client, clinic, settings):
    assert "Authentication code" not in client.get(LOGIN).content.decode()
    settings.STAFF_REQUIRE_2FA = True
    assert "Authentication code" in client.get(LOGIN).content.decode()


def test_with_2fa_off_a_password_alone_opens_the_admin(client, clinic, device):
    assert sign_in(client).status_code == 302
    assert can_reach_index(client)


def test_staff_without_a_device_are_sent_to_set_one_up_and_can_do_nothing_else(
    client, clinic, staff_user, require_2fa
):
    response = sign_in(client)
    assert response.status_code == 302
    setup = client.get(response.url, follow=True)
    assert setup.redirect_chain[-1][0] == SETUP
    page = setup.content.decode()
    assert "<svg" in page and "Set up two-factor sign-in" in page
    pending = TOTPDevice.objects.get(user=staff_user)
    key = b32encode(pending.bin_key).decode()
    assert key[:4] in page and "Access attempts" not in page

    for path in [INDEX, reverse("admin:articles_article_changelist"), LOGIN]:
        assert client.get(path).url == SETUP, path
    # Reloading keeps the same secret: the code the app already shows still counts.
    client.get(SETUP)
    assert TOTPDevice.objects.get(user=staff_user).key == pending.key


def test_setting_up_a_device_takes_a_right_first_code(client, clinic, staff_user, require_2fa):
    sign_in(client)
    client.get(SETUP)
    pending = TOTPDevice.objects.get(user=staff_user)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        wrong = "000000" if code(pending) != "000000" else "111111"
        refused = client.post(SETUP, {"token": wrong})
        assert refused.status_code == 400
        assert "That code is not right." in refused.content.decode()
        # Each wrong code makes the next wait (1 s, 2 s, 4 s...): no running through them.
        too_soon = client.post(SETUP, {"token": code(pending)})
        assert too_soon.status_code == 400
        assert "Too many wrong codes in a row" in too_soon.content.decode()
    assert not TOTPDevice.objects.get(pk=pending.pk).confirmed

    with time_machine.travel(start + timedelta(seconds=5), tick=False):
        done = client.post(SETUP, {"token": code(pending)}, follow=True)
    assert done.redirect_chain[-1][0] == INDEX and done.status_code == 200
    assert "Two-factor sign-in is set up." in done.content.decode()
    assert TOTPDevice.objects.get(pk=pending.pk).confirmed

    # From now on a sign-in asks for the code; a code is good once, so take the next one.
    client.logout()
    assert sign_in(client).status_code == 200
    with time_machine.travel(start + timedelta(seconds=65), tick=False):
        assert sign_in(client, otp_token=code(pending)).status_code == 302
        assert can_reach_index(client)


def test_a_password_only_session_cannot_add_a_second_device(
    client, clinic, staff_user, device, require_2fa
):
    client.force_login(staff_user)  # a stolen password, no code
    assert client.get(SETUP).url == LOGIN
    client.post(SETUP, {"token": "123456"})
    assert list(TOTPDevice.objects.filter(user=staff_user)) == [device]


def test_someone_half_signed_in_can_log_out(client, clinic, staff_user, require_2fa):
    sign_in(client)
    response = client.post(reverse("admin:logout"))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
