"""A patient on a phone signs up from the footer, confirms from the email, then unsubscribes."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from clinic.models import OutgoingEmail
from newsletter import services
from newsletter.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_up_from_the_footer_confirm_then_unsubscribe(page, check_page, live_server, seeded):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/articles/")
    footer = page.get_by_role("contentinfo")
    footer.get_by_label("Your email").fill("pat@example.com")
    footer.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/newsletter/check-your-inbox/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    check_page("newsletter-check-inbox")

    email = OutgoingEmail.objects.get(to=["pat@example.com"])
    link = re.search(r"http\S+/newsletter/confirm/\S+/", email.body_text).group(0)
    page.goto(link.replace(settings.SITE_URL, live_server.url))
    check_page("newsletter-confirm")
    page.get_by_role("button", name="Yes, subscribe me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    subscriber = Subscriber.objects.get()
    assert subscriber.status == "confirmed" and subscriber.consent_page == "/articles/"

    page.goto(services.unsubscribe_url(subscriber).replace(settings.SITE_URL, live_server.url))
    check_page("newsletter-unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"


def test_a_mistyped_address_comes_back_with_a_message(page, check_page, live_server, seeded):
    page.goto(live_server.url + "/newsletter/")
    page.expected_4xx.add(live_server.url + "/newsletter/subscribe/")
    form = page.get_by_role("main")
    form.get_by_label("Your email").fill("pat@example")
    form.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Enter a valid email address.")).to_be_visible()
    expect(form.get_by_label("Your email")).to_have_value("pat@example")
    check_page("newsletter-error")
