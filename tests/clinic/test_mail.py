"""The outbox: no email is lost, none is sent twice."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail as django_mail
from django.db import connection, transaction
from django.utils import timezone

from clinic import mail
from clinic.models import OutgoingEmail
from tests.conftest import wait_for


def row(subject="Your appointment", **fields):
    """An outbox row written directly: nothing queued for it."""
    return OutgoingEmail.objects.create(
        to=["pat@example.com"], subject=subject, body_text="x", **fields
    )


@pytest.fixture
def queued(monkeypatch):
    """The ids handed to the broker, instead of handing them over."""
    ids = []
    monkeypatch.setattr(mail, "enqueue_send", ids.append)
    return ids


def queue(subject="Your appointment", **extra):
    return mail.queue_email(to="pat@example.com", subject=subject, body_text="Hello", **extra)


@pytest.mark.django_db(transaction=True)
def test_an_email_queued_in_a_committed_action_is_sent_once(delivered):
    with transaction.atomic():
        email = queue("Booking confirmed")
    assert delivered(expected=1) == ["Booking confirmed"]
    email.refresh_from_db()
    assert wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).state == "sent")
    assert OutgoingEmail.objects.get(pk=email.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_an_action_that_rolls_back_sends_nothing(delivered):
    with pytest.raises(RuntimeError), transaction.atomic():
        queue("Never")
        raise RuntimeError("the booking failed")
    assert OutgoingEmail.objects.count() == 0
    with transaction.atomic():
        queue("Sentinel")  # once this arrives, a leaked email would have arrived too
    assert delivered(expected=1) == ["Sentinel"]


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_the_action_still_delivers_once_it_is_back(delivered, broker_down):
    with broker_down(), transaction.atomic():  # the action succeeds: nothing reaches the user
        email = queue("Survives the outage")
    assert OutgoingEmail.objects.get(pk=email.pk).state == "pending"

    # Too soon for the sweep: a task may still be on its way.
    assert mail.requeue_stale_emails(now=timezone.now()) == 0
    # The broker is back; the beat sweep runs a few minutes later.
    assert mail.requeue_stale_emails(now=timezone.now() + timedelta(minutes=6)) == 1
    assert delivered(expected=1) == ["Survives the outage"]
    assert wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).state == "sent")


@pytest.mark.django_db
def test_sending_the_same_row_twice_sends_one_email():
    email = queue()
    assert mail.send_outgoing_email(email_id=email.pk) is True
    assert mail.send_outgoing_email(email_id=email.pk) is False
    assert len(django_mail.outbox) == 1
    email.refresh_from_db()
    assert email.state == "sent" and email.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_row_send_it_once():
    # A row written directly: nothing queued, the two "workers" below are the only senders.
    email = row("Race")
    barrier = threading.Barrier(2)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(mail.send_outgoing_email(email_id=email.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert len(django_mail.outbox) == 1


@pytest.mark.django_db
def test_a_refused_email_waits_for_a_retry_then_gives_up(settings, monkeypatch):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    email = queue()

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    assert mail.send_outgoing_email(email_id=email.pk) is False
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("pending", 1)
    assert "SMTP server down" in email.last_error
    mail.send_outgoing_email(email_id=email.pk)
    email.refresh_from_db()
    assert (email.state, email.attempts) == ("failed", 2)


@pytest.mark.django_db
def test_html_part_headers_and_attachments_reach_the_message():
    email = queue(
        body_html="<p>Hello</p>",
        headers={"Reply-To": "clinic@example.com"},
        attachments=[
            {"filename": "visit.ics", "content": "BEGIN:VCALENDAR", "mimetype": "text/calendar"}
        ],
    )
    mail.send_outgoing_email(email_id=email.pk)
    (message,) = django_mail.outbox
    assert message.alternatives[0][0] == "<p>Hello</p>"
    assert message.extra_headers["Reply-To"] == "clinic@example.com"
    assert message.attachments[0][0] == "visit.ics"


@pytest.mark.django_db
def test_sweep_skips_sent_and_recently_tried_emails():
    now = timezone.now()
    old = now - timedelta(minutes=10)
    stale = row("a", created_at=old)
    row("b", created_at=now)
    row("c", created_at=old, state="sent", sent_at=old)
    row("d", created_at=old, last_attempt_at=now)
    assert list(OutgoingEmail.objects.stale(now=now, minutes=5)) == [stale]


@pytest.mark.django_db
def test_failed_emails_are_retried_less_and_less_often(queued):
    now = timezone.now()
    tried = row("a", created_at=now - timedelta(hours=2), attempts=3, last_attempt_at=now)
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=19)) == 0
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=20)) == 1
    assert queued == [tried.pk]


@pytest.mark.django_db
def test_a_sender_that_died_mid_send_is_replaced_after_its_lease(queued):
    email = row("Lost")
    now = timezone.now()
    OutgoingEmail.objects.filter(pk=email.pk).update(
        state="sending", attempts=1, last_attempt_at=now
    )
    assert mail.send_outgoing_email(email_id=email.pk) is False  # someone else owns it
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=9)) == 0
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=11)) == 1
    with time_machine.travel(now + timedelta(minutes=11)):
        assert mail.send_outgoing_email(email_id=email.pk) is True
    assert [m.subject for m in django_mail.outbox] == ["Lost"]


@pytest.mark.django_db(transaction=True)
def test_staff_can_send_a_given_up_email_again(client, staff_user, delivered):
    from django.urls import reverse

    email = row("Retry me", state="failed", attempts=8)
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:clinic_outgoingemail_changelist"),
        {"action": "send_again", "_selected_action": [email.pk]},
    )
    assert response.status_code == 302
    assert delivered(expected=1) == ["Retry me"]
    assert wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).state == "sent")
    assert OutgoingEmail.objects.get(pk=email.pk).attempts == 1


@pytest.mark.django_db
def test_templated_email_renders_subject_text_and_optional_html(settings, tmp_path):
    emails = tmp_path / "emails" / "clinic"
    emails.mkdir(parents=True)
    for name in ("plain", "rich"):
        (emails / f"{name}_subject.txt").write_text("Hello\n  {{ name }}\n")
        (emails / f"{name}_body.txt").write_text("Dear {{ name }},")
    (emails / "rich_body.html").write_text("<p>Dear {{ name }},</p>")
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path]} for engine in settings.TEMPLATES]
    context = {"name": "Pat <3"}

    plain = mail.queue_templated_email(to="a@example.com", template="clinic/plain", context=context)
    assert (plain.subject, plain.body_text, plain.body_html) == ("Hello Pat <3", "Dear Pat <3,", "")
    rich = mail.queue_templated_email(to="a@example.com", template="clinic/rich", context=context)
    assert rich.body_html == "<p>Dear Pat &lt;3,</p>"


@pytest.mark.django_db
def test_the_sweep_does_not_queue_the_same_email_again_on_its_next_run(queued):
    now = timezone.now()
    email = row("a", created_at=now - timedelta(minutes=30))
    assert mail.requeue_stale_emails(now=now) == 1
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=2)) == 0  # the next beat
    assert mail.requeue_stale_emails(now=now + timedelta(minutes=6)) == 1  # still unsent
    assert queued == [email.pk, email.pk]


@pytest.mark.django_db
def test_an_email_whose_sender_keeps_dying_is_given_up(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(hours=1)
    email = row("a", created_at=long_ago, state="sending", attempts=3, last_attempt_at=long_ago)
    assert mail.send_outgoing_email(email_id=email.pk) is False  # no fourth claim
    mail.requeue_stale_emails()
    email.refresh_from_db()
    assert email.state == "failed" and "worker died" in email.last_error
    assert django_mail.outbox == []
