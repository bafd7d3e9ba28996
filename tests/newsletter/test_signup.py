"""Newsletter sign-up with double opt-in, from a patient's side and a bot's."""

import html
import re
import secrets
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from clinic.models import OutgoingEmail
from newsletter import services
from newsletter.models import Subscriber

pytestmark = pytest.mark.django_db

SUBSCRIBE = "/newsletter/subscribe/"


def sign_up(client, email="pat@example.com", **extra):
    data = {"email": email, "page": "/articles/", "website": "", **extra}
    return client.post(SUBSCRIBE, data, REMOTE_ADDR=extra.pop("ip", "203.0.113.9"))


def confirm_link(email="pat@example.com"):
    row = OutgoingEmail.objects.filter(to=[email]).order_by("-created_at").first()
    url = re.search(r"http\S+/newsletter/confirm/\S+/", row.body_text).group(0)
    return url.removeprefix(settings.SITE_URL)


@pytest.fixture
def confirmed(clinic, client):
    sign_up(client)
    client.post(confirm_link())
    return Subscriber.objects.get()


def test_the_footer_form_is_on_every_page_with_nothing_per_visitor(client, seeded):
    for path in ["/", "/articles/", "/book/", "/newsletter/"]:
        page = client.get(path).content.decode()
        assert 'action="/newsletter/subscribe/"' in page, path
        footer = page[page.index("<footer") :]
        assert "csrfmiddlewaretoken" not in footer
    assert "csrftoken" not in client.cookies


def test_signing_up_writes_a_pending_subscriber_with_a_consent_record_and_mails_a_link(
    client, clinic
):
    response = sign_up(client, email="  Pat@Example.COM ")
    assert response.status_code == 302 and response["Location"] == "/newsletter/check-your-inbox/"
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "pat@example.com"
    assert subscriber.status == "pending"
    assert subscriber.consent_text == str(services.CONSENT_TEXT)
    assert subscriber.consent_page == "/articles/"
    assert subscriber.consent_ip == "203.0.113.0"  # the network, not the person
    email = OutgoingEmail.objects.get(to=["pat@example.com"])
    assert "Confirm your subscription" in email.subject
    assert "/newsletter/confirm/" in email.body_html
    # Mail apps and screen readers name the HTML by its <title>: the subject.
    title = re.search(r"<title>(.*?)</title>", email.body_html).group(1)
    assert html.unescape(title) == email.subject
    assert '<html lang="en">' in email.body_html


def test_the_answer_is_the_same_for_new_pending_confirmed_and_unsubscribed(client, confirmed):
    pending = "pending@example.com"
    sign_up(client, email=pending)
    gone = Subscriber.objects.create(
        email="gone@example.com", status="unsubscribed", unsubscribed_at=timezone.now()
    )
    answers = {
        sign_up(client, email=email).headers["Location"]
        for email in ["new@example.com", pending, confirmed.email, gone.email]
    }
    assert answers == {"/newsletter/check-your-inbox/"}


def test_every_sign_up_takes_the_same_minimum_time(client, confirmed, settings):
    settings.NEWSLETTER_SIGNUP_SECONDS = 0.2
    for email in [confirmed.email, f"new-{secrets.token_hex(3)}@example.com"]:
        started = time.monotonic()
        sign_up(client, email=email)
        assert time.monotonic() - started >= 0.2


def test_a_pending_address_is_mailed_again_at_most_every_ten_minutes(client, clinic):
    sign_up(client)
    sign_up(client)
    assert OutgoingEmail.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        sign_up(client)
    assert OutgoingEmail.objects.count() == 2


def test_a_confirmed_address_gets_no_email_and_stays_confirmed(client, confirmed):
    before = OutgoingEmail.objects.count()
    sign_up(client)
    assert OutgoingEmail.objects.count() == before
    confirmed.refresh_from_db()
    assert confirmed.status == "confirmed"


def test_confirming_takes_a_button_press_not_just_opening_the_link(client, clinic):
    sign_up(client)
    link = confirm_link()
    page = client.get(link)
    assert page.status_code == 200 and "Yes, subscribe me" in page.content.decode()
    assert Subscriber.objects.get().status == "pending"  # a mail scanner's GET changes nothing
    response = client.post(link)
    assert "You are subscribed" in response.content.decode()
    subscriber = Subscriber.objects.get()
    assert subscriber.status == "confirmed" and subscriber.confirmed_at
    assert "You are subscribed" in client.post(link).content.decode()  # a double click


def test_an_expired_link_offers_a_new_one(client, clinic):
    sign_up(client)
    link = confirm_link()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        page = client.get(link)
        assert page.status_code == 410 and "Send me a new link" in page.content.decode()
        assert client.post(link).status_code == 410
        token = link.split("/")[-2]
        response = client.post(reverse("newsletter:resend", args=[token]))
        assert response["Location"] == "/newsletter/check-your-inbox/"
        fresh = confirm_link()
        assert fresh != link
        client.post(fresh)
    assert Subscriber.objects.get().status == "confirmed"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda link: link[:-3] + "xx/",
        lambda link: "/newsletter/confirm/" + "a" * 400 + "/",
        lambda link: (
            "/newsletter/confirm/"
            + signing.dumps({"s": 999999, "t": 0}, salt=services.CONFIRM_SALT)
            + "/"
        ),
        lambda link: (
            "/newsletter/confirm/" + signing.dumps({"s": 1}, salt=services.UNSUBSCRIBE_SALT) + "/"
        ),
    ],
    ids=["tampered", "too long", "nobody", "wrong salt"],
)
def test_a_tampered_link_is_a_clear_404(client, clinic, mangle):
    sign_up(client)
    for method in (client.get, client.post):
        response = method(mangle(confirm_link()))
        assert response.status_code == 404
        assert "This link does not work" in response.content.decode()
    assert Subscriber.objects.get().status == "pending"


def test_unsubscribing_from_the_page_and_by_one_click_post(client, confirmed):
    url = services.unsubscribe_url(confirmed).removeprefix(settings.SITE_URL)
    page = client.get(url)
    assert "Unsubscribe" in page.content.decode()
    confirmed.refresh_from_db()
    assert confirmed.status == "confirmed"
    # RFC 8058: the mail client POSTs with no CSRF token and no login.
    strict = client.__class__(enforce_csrf_checks=True)
    response = strict.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    confirmed.refresh_from_db()
    assert confirmed.status == "unsubscribed" and confirmed.unsubscribed_at
    assert strict.post(url).status_code == 200  # twice is fine
    with time_machine.travel(timezone.now() + timedelta(days=3 * 365)):
        assert client.get(url).status_code == 200  # unsubscribe links never expire


def test_an_old_confirm_link_cannot_resubscribe_someone_who_left(client, confirmed):
    old_link = confirm_link()
    services.unsubscribe(subscriber=confirmed)
    assert client.post(old_link).status_code == 404
    confirmed.refresh_from_db()
    assert confirmed.status == "unsubscribed"


def test_signing_up_again_after_unsubscribing_starts_over(client, confirmed):
    services.unsubscribe(subscriber=confirmed)
    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        sign_up(client)
    confirmed.refresh_from_db()
    assert confirmed.status == "pending" and confirmed.confirmed_at is None
    client.post(confirm_link())
    confirmed.refresh_from_db()
    assert confirmed.status == "confirmed"


def test_the_honeypot_answers_like_a_sign_up_and_writes_nothing(client, clinic):
    response = sign_up(client, website="http://spam.example")
    assert response.status_code == 302
    assert Subscriber.objects.count() == 0 and OutgoingEmail.objects.count() == 0


HOSTILE = {
    "malformed": "not-an-email",
    "10,000 characters": "a" * 9990 + "@example.com",
    "header injection": "pat@example.com\r\nBcc: all@example.com",
    "newline": "pat@example.com\nX",
    "NUL byte": "pat\x00@example.com",
    "empty": "",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_addresses_get_a_clear_400_with_the_input_kept(client, clinic, case):
    response = sign_up(client, email=HOSTILE[case])
    assert response.status_code == 400
    page = response.content.decode()
    assert "Please check your email address." in page
    assert Subscriber.objects.count() == 0 and OutgoingEmail.objects.count() == 0


def test_a_hostile_page_field_is_not_stored(client, clinic):
    sign_up(client, page="https://evil.example/\r\nX")
    assert Subscriber.objects.get().consent_page == ""


def test_too_many_sign_ups_from_one_network_get_a_friendly_429(client, clinic, settings):
    settings.NEWSLETTER_RATE_LIMIT = "2/h"
    address = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"
    codes = [
        client.post(SUBSCRIBE, {"email": f"p{i}@example.com"}, REMOTE_ADDR=address).status_code
        for i in range(3)
    ]
    assert codes == [302, 302, 429]


def test_sign_ups_never_confirmed_are_purged_after_30_days(clinic):
    services.subscribe(email="old@example.com", now=timezone.now() - timedelta(days=31))
    services.subscribe(email="recent@example.com", now=timezone.now() - timedelta(days=29))
    Subscriber.objects.create(
        email="kept@example.com",
        status="confirmed",
        confirmed_at=timezone.now(),
        signed_up_at=timezone.now() - timedelta(days=90),
    )
    from newsletter.tasks import purge_unconfirmed_task

    assert purge_unconfirmed_task.apply().get() == 1
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "recent@example.com",
        "kept@example.com",
    }


@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_the_confirmation_and_the_link_confirms(client, clinic, delivered):
    # Pass (b): the real Celery worker sends it through the outbox.
    sign_up(client, email="worker@example.com")
    subjects = delivered(expected=1)
    assert any("Confirm your subscription" in subject for subject in subjects)
    assert client.post(confirm_link("worker@example.com")).status_code == 200
    assert Subscriber.objects.get().status == "confirmed"


def test_purging_and_erasing_leave_no_copy_of_the_address_in_the_outbox(clinic):
    services.subscribe(email="old@example.com", now=timezone.now() - timedelta(days=31))
    assert OutgoingEmail.objects.filter(to=["old@example.com"]).exists()
    assert services.purge_unconfirmed() == 1
    assert not OutgoingEmail.objects.filter(to=["old@example.com"]).exists()


def test_a_persons_unsubscribe_link_is_the_same_in_every_email(confirmed):
    first = services.unsubscribe_url(confirmed)
    with time_machine.travel(timezone.now() + timedelta(days=40)):
        assert services.unsubscribe_url(confirmed) == first
