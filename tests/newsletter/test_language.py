"""The newsletter in the subscriber's language: sign-up, confirmation and issues."""

import re

import pytest
from django.conf import settings
from django.core import mail as django_mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from clinic import mail
from clinic.models import OutgoingEmail
from newsletter import services
from newsletter.models import NewsletterIssue, Subscriber

pytestmark = pytest.mark.django_db


def sign_up(client, email, prefix=""):
    data = {"email": email, "page": f"{prefix}/newsletter/", "website": ""}
    return client.post(f"{prefix}/newsletter/subscribe/", data, REMOTE_ADDR="203.0.113.9")


def confirm_path(email):
    row = OutgoingEmail.objects.get(to=[email])
    return re.search(r"http\S+/newsletter/confirm/\S+/", row.body_text).group(0)


def test_signing_up_in_spanish_confirms_in_spanish(client, clinic):
    response = sign_up(client, "rosa@example.com", prefix="/es")
    assert response.status_code == 302
    subscriber = Subscriber.objects.get()
    assert subscriber.language == "es"
    link = confirm_path("rosa@example.com")
    assert link.startswith(settings.SITE_URL + "/es/newsletter/confirm/")
    email = OutgoingEmail.objects.get()
    with translation.override("es"):
        assert translation.gettext("Hello,") in email.body_text
    # The link opens the Spanish confirm page, and confirming works from it.
    page = client.get(link.removeprefix(settings.SITE_URL))
    assert page.status_code == 200 and '<html lang="es"' in page.content.decode()
    client.post(link.removeprefix(settings.SITE_URL))
    subscriber.refresh_from_db()
    assert subscriber.status == "confirmed"


def test_signing_up_in_english_stays_english(client, clinic):
    sign_up(client, "pat@example.com")
    assert Subscriber.objects.get().language == "en"
    assert confirm_path("pat@example.com").startswith(settings.SITE_URL + "/newsletter/confirm/")


@pytest.fixture
def readers(clinic):
    def make(email, language):
        services.subscribe(email=email, language=language)
        subscriber = Subscriber.objects.get(email=email)
        services.confirm_subscription(subscriber=subscriber)
        return subscriber

    return make("pat@example.com", "en"), make("rosa@example.com", "es")


def send(issue, django_capture_on_commit_callbacks):
    OutgoingEmail.objects.all().delete()
    services.start_sending_issue(issue=issue)
    with django_capture_on_commit_callbacks(execute=True):
        services.fan_out_issue(issue_id=issue.pk)
    return {row.to[0]: row for row in OutgoingEmail.objects.all()}


def test_each_subscriber_gets_the_issue_in_their_language(
    readers, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(mail, "publish_sends", lambda ids, **kw: None)
    monkeypatch.setattr(services, "publish_fan_out", lambda task, issue_id: None)
    issue = services.save_issue(
        issue=NewsletterIssue(
            subject="New evening hours",
            body="We now see patients until **7 pm** on Thursdays.",
            subject_es="Nuevo horario por la tarde",
            body_es="Ahora atendemos hasta las **7 de la noche** los jueves.",
        )
    )
    copies = send(issue, django_capture_on_commit_callbacks)
    english, spanish = copies["pat@example.com"], copies["rosa@example.com"]
    assert english.subject == "New evening hours" and "until" in english.body_text
    assert "<strong>7 pm</strong>" in english.body_html
    assert spanish.subject == "Nuevo horario por la tarde"
    assert "<strong>7 de la noche</strong>" in spanish.body_html
    assert "Ahora atendemos" in spanish.body_text and "until" not in spanish.body_text
    # Each unsubscribe link opens the page in the reader's language.
    assert settings.SITE_URL + "/es/newsletter/unsubscribe/" in spanish.body_text
    assert settings.SITE_URL + "/newsletter/unsubscribe/" in english.body_text
    assert "/es/newsletter/unsubscribe/" in spanish.headers["List-Unsubscribe"]


def test_without_a_spanish_version_everyone_gets_the_english_issue(
    readers, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(mail, "publish_sends", lambda ids, **kw: None)
    monkeypatch.setattr(services, "publish_fan_out", lambda task, issue_id: None)
    issue = services.save_issue(
        issue=NewsletterIssue(subject="New evening hours", body="Open until 7 pm on Thursdays.")
    )
    copies = send(issue, django_capture_on_commit_callbacks)
    assert copies["rosa@example.com"].subject == "New evening hours"
    assert "Open until 7 pm" in copies["rosa@example.com"].body_text
    assert not django_mail.outbox  # written to the outbox only: nothing sent by the test


def test_half_a_spanish_version_is_refused(clinic):
    with pytest.raises(ValidationError) as refused:
        services.save_issue(
            issue=NewsletterIssue(subject="News", body="Hello.", subject_es="Noticias")
        )
    assert "body_es" in refused.value.message_dict


def test_staff_preview_the_spanish_copy(client, staff_user, clinic):
    issue = services.save_issue(
        issue=NewsletterIssue(subject="News", body="Hello.", subject_es="Noticias", body_es="Hola.")
    )
    client.force_login(staff_user)
    change_url = reverse("admin:newsletter_newsletterissue_change", args=[issue.pk])
    change = client.get(change_url).content.decode()
    assert "?lang=es" in change
    url = reverse("admin:newsletter_issue_preview", args=[issue.pk])
    text = client.get(url, {"part": "text", "lang": "es"}).content.decode()
    assert text.startswith("Subject: Noticias") and "Hola." in text
