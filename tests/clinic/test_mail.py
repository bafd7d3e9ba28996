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
    """An outbox row written directly, nothing published for it; like queue_email, the
    sweep may look at it once the grace period after its creation is over."""
    fields.setdefault("created_at", timezone.now())
    fields.setdefault("next_attempt_at", fields["created_at"] + timedelta(minutes=5))
    return OutgoingEmail.objects.create(
        to=["pat@example.com"], subject=subject, body_text="x", **fields
    )


@pytest.fixture
def queued(monkeypatch):
    """The ids published to the broker, recorded instead of published."""
    ids = []
    monkeypatch.setattr(mail, "publish_send", lambda email_id, **kwargs: ids.append(email_id))
    return ids


@pytest.fixture
def published(monkeypatch):
    """(email id, Celery queue) of each send task published; None is the default queue."""
    from clinic.tasks import send_email_task

    calls = []

    def record(args, queue=None, **kwargs):
        calls.append((args[0], queue))

    monkeypatch.setattr(send_email_task, "apply_async", record)
    return calls


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
    assert mail.republish_due_emails(now=timezone.now()) == 0
    # The broker is back; the beat sweep runs a few minutes later.
    assert mail.republish_due_emails(now=timezone.now() + timedelta(minutes=6)) == 1
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
def test_sweep_skips_sent_new_backing_off_and_leased_emails():
    now = timezone.now()
    old = now - timedelta(minutes=10)
    due = row("a", created_at=old)
    row("b", created_at=now)  # its task may still be on its way
    row("c", created_at=old, state="sent", sent_at=old)
    row("d", created_at=old, next_attempt_at=now + timedelta(minutes=1))  # backing off
    row("e", created_at=old, state="sending", lease_expires_at=now + timedelta(seconds=20))
    row("f", created_at=old, state="failed", attempts=8)
    assert list(OutgoingEmail.objects.due(now=now)) == [due]


@pytest.mark.django_db
def test_abandoned_means_claimed_by_a_sender_whose_lease_ran_out():
    now = timezone.now()
    long_ago = now - timedelta(hours=1)
    dead = row("a", state="sending", last_attempt_at=long_ago, lease_expires_at=now)
    # Claimed long ago, but its sender keeps renewing the lease: it is still sending.
    lease_end = now + timedelta(seconds=1)
    row("b", state="sending", last_attempt_at=long_ago, lease_expires_at=lease_end)
    row("c", state="pending", last_attempt_at=now - timedelta(hours=1))
    assert list(OutgoingEmail.objects.abandoned(now=now)) == [dead]


@pytest.mark.django_db
def test_failed_emails_are_retried_less_and_less_often(queued, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("SMTP server down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    start = timezone.now()
    email = row("a", created_at=start - timedelta(hours=2))
    tried_at, waits = start, []
    for _ in range(4):
        with time_machine.travel(tried_at, tick=False):
            assert mail.send_outgoing_email(email_id=email.pk) is False
        email.refresh_from_db()
        waits.append(email.next_attempt_at - tried_at)
        assert mail.republish_due_emails(now=email.next_attempt_at - timedelta(seconds=1)) == 0
        assert mail.republish_due_emails(now=email.next_attempt_at) == 1
        tried_at = email.next_attempt_at
    assert [wait // timedelta(minutes=1) for wait in waits] == [5, 10, 20, 40]
    assert queued == [email.pk] * 4


@pytest.mark.django_db
def test_an_email_in_a_long_back_off_does_not_hold_up_a_due_one(queued, monkeypatch):
    monkeypatch.setattr(mail, "REPUBLISH_BATCH", 2)
    now = timezone.now()
    for n in range(3):  # older than the due email, and more of them than one batch
        row(
            f"backing off {n}",
            created_at=now - timedelta(days=1, minutes=n),
            attempts=7,
            next_attempt_at=now + timedelta(hours=20),
        )
    due = row("due", created_at=now - timedelta(minutes=30))
    assert mail.republish_due_emails(now=now) == 1
    assert queued == [due.pk]


@pytest.mark.django_db
def test_the_sweep_republishes_transactional_mail_before_bulk(queued, monkeypatch):
    monkeypatch.setattr(mail, "REPUBLISH_BATCH", 2)
    now = timezone.now()
    older_bulk = [
        row(f"newsletter {n}", category="bulk", created_at=now - timedelta(hours=1, minutes=n))
        for n in range(2)
    ]
    confirmation = row("Booking confirmed", created_at=now - timedelta(minutes=10))
    assert mail.republish_due_emails(now=now) == 2
    assert queued == [confirmation.pk, older_bulk[1].pk]


@pytest.mark.django_db
def test_bulk_mail_is_published_to_its_own_queue(published, django_capture_on_commit_callbacks):
    from clinic.celery import app

    with django_capture_on_commit_callbacks(execute=True):
        bulk = queue("Spring newsletter", category=OutgoingEmail.Category.BULK)
        confirmation = queue("Booking confirmed")
    assert published == [(bulk.pk, app.conf.bulk_queue), (confirmation.pk, None)]
    assert app.conf.bulk_queue not in ("", None, app.conf.task_default_queue)


@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_bulk_mail_too(delivered):
    with transaction.atomic():
        email = queue("Spring newsletter", category=OutgoingEmail.Category.BULK)
    assert delivered(expected=1) == ["Spring newsletter"]
    assert wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).state == "sent")


@pytest.mark.django_db
def test_an_idempotency_key_writes_one_email(django_capture_on_commit_callbacks):
    key = "booking:reminder:7:2026-03-08T10:00:00-07:00"
    with django_capture_on_commit_callbacks() as callbacks:
        first = queue("Reminder", idempotency_key=key)
        second = queue("Reminder, again", idempotency_key=key)
    assert second.pk == first.pk and second.subject == "Reminder"
    assert OutgoingEmail.objects.count() == 1
    assert len(callbacks) == 1  # published once
    assert queue("Other", idempotency_key="").pk != queue("Other").pk  # no key: no limit


@pytest.mark.django_db(transaction=True)
def test_writers_racing_with_one_idempotency_key_write_one_email(queued):
    key = "booking:reminder:7:2026-03-08T10:00:00-07:00"
    barrier = threading.Barrier(2)
    results = []

    def writer():
        try:
            barrier.wait()
            with transaction.atomic():  # as a service would: the key decides within it
                results.append(queue("Reminder", idempotency_key=key).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (email,) = OutgoingEmail.objects.all()
    assert results == [email.pk, email.pk]
    assert queued == [email.pk]


@pytest.mark.django_db
def test_a_sender_that_died_mid_send_is_replaced_after_its_short_lease(queued, settings):
    settings.OUTBOX_SEND_LEASE_SECONDS = 60
    email = row("Lost")
    now = timezone.now()
    assert mail._claim(email.pk, now)  # a sender that then dies, renewing nothing
    assert mail.send_outgoing_email(email_id=email.pk) is False  # someone else owns it
    assert mail.republish_due_emails(now=now + timedelta(seconds=59)) == 0
    # The next beat after the lease (not ten minutes later) resends it, as the same email.
    assert mail.republish_due_emails(now=now + timedelta(seconds=60)) == 1
    with time_machine.travel(now + timedelta(seconds=61)):
        assert mail.send_outgoing_email(email_id=email.pk) is True
    assert [m.subject for m in django_mail.outbox] == ["Lost"]
    assert django_mail.outbox[0].extra_headers["Message-ID"] == email.message_id


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
def test_templates_get_the_clinic_and_site_url_unless_the_caller_says_otherwise(
    settings, tmp_path, clinic
):
    emails = tmp_path / "emails" / "clinic"
    emails.mkdir(parents=True)
    (emails / "hello_subject.txt").write_text("From {{ clinic.name }}")
    (emails / "hello_body.txt").write_text("{{ site_url }}/book/")
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path]} for engine in settings.TEMPLATES]
    settings.SITE_URL = "https://clinic.example"

    email = mail.queue_templated_email(to="a@example.com", template="clinic/hello", context={})
    assert (email.subject, email.body_text) == (
        f"From {clinic.name}",
        "https://clinic.example/book/",
    )
    email = mail.queue_templated_email(
        to="a@example.com",
        template="clinic/hello",
        context={"site_url": "https://elsewhere.example"},
    )
    assert email.body_text == "https://elsewhere.example/book/"


@pytest.mark.django_db
def test_the_sweep_does_not_republish_the_same_email_on_its_next_run(queued):
    now = timezone.now()
    email = row("a", created_at=now - timedelta(minutes=30))
    assert mail.republish_due_emails(now=now) == 1
    assert mail.republish_due_emails(now=now + timedelta(minutes=2)) == 0  # the next beat
    assert mail.republish_due_emails(now=now + timedelta(minutes=6)) == 1  # still unsent
    assert queued == [email.pk, email.pk]


@pytest.mark.django_db
def test_an_email_whose_sender_keeps_dying_is_given_up(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(hours=1)
    email = row(
        "a",
        created_at=long_ago,
        state="sending",
        attempts=3,
        last_attempt_at=long_ago,
        lease_expires_at=long_ago + timedelta(minutes=1),
    )
    assert mail.send_outgoing_email(email_id=email.pk) is False  # no fourth claim
    mail.republish_due_emails()
    email.refresh_from_db()
    assert email.state == "failed" and "worker died" in email.last_error
    assert django_mail.outbox == []


@pytest.mark.parametrize(
    "subject",
    [
        "Reservada: martes 8 de diciembre, 9:30 a. m. · Clínica de Masaje Terapéutico del Valle",
        "Booked: Tue, Dec 8, 9:30 AM · Porter Avenue Massage Clinic",
        "Booked: Tuesday, December 8, 9:30 AM - Porter Avenue Massage and Soft-Tissue Clinic",
        "Short · one",
    ],
)
def test_a_long_or_accented_subject_decodes_exactly_with_no_leading_space(subject):
    import email
    from email import policy

    row = OutgoingEmail(to=["pat@example.com"], subject=subject, body_text="Hello")
    raw = mail._message(row).message().as_bytes(linesep="\r\n")
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    subject_line = next(line for line in header_lines if line.startswith(b"Subject:"))
    assert subject_line.strip() != b"Subject:"  # not folded before its first word
    assert email.message_from_bytes(raw, policy=policy.default)["Subject"] == subject
