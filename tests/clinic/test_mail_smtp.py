"""The outbox against a real SMTP server (aiosmtpd, in this process) that answers slowly.

SMTP cannot promise exactly once: a sender that dies after the server took the message
but before it was marked sent leaves it to be sent again. What the outbox promises is
that nothing is lost and that the copy carries the same Message-ID (so mail servers and
clients recognise it), and that a live sender on a slow server is never taken for dead.
"""

import asyncio
import email
import email.policy
import os
import signal
import socket
import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from clinic import mail
from clinic.models import OutgoingEmail
from tests.conftest import REAL_WORKER, start_worker, stop_worker, wait_for


class SlowMailServer:
    """Keeps every message it is handed; while `hold` is set, it takes the message and
    then keeps the sender waiting for its answer until `release` is set."""

    def __init__(self):
        self.messages = []
        self.hold = False
        self.received = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  # aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.SMTP))
        self.received.set()
        if self.hold:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        return "250 Message accepted for delivery"

    def message_ids(self):
        return [str(message["Message-ID"]) for message in self.messages]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    handler = SlowMailServer()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    handler.release.set()  # a held answer must not keep the server from stopping
    controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.hostname
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    return settings


def queue(subject="Booking confirmed"):
    return mail.queue_email(to="pat@example.com", subject=subject, body_text="See you Monday.")


@pytest.mark.django_db
def test_every_email_has_its_own_message_id_before_it_is_sent(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        one, two = queue("One"), queue("Two")
        bulk = mail.write_bulk_emails(
            [{"to": f"reader{n}@example.com", "subject": "News", "body_text": "x"} for n in (1, 2)]
        )
    ids = [row.message_id for row in (one, two, *bulk)]
    assert len(set(ids)) == 4
    assert all(each.startswith("<") and each.endswith("@127.0.0.1>") for each in ids)
    stored = OutgoingEmail.objects.in_bulk([row.pk for row in (one, two, *bulk)])
    assert [stored[row.pk].message_id for row in (one, two, *bulk)] == ids


@pytest.mark.django_db
def test_an_email_the_server_took_but_never_confirmed_is_resent_with_the_same_message_id(
    smtp_settings, smtp_server, django_capture_on_commit_callbacks
):
    server = smtp_server.handler
    smtp_settings.EMAIL_TIMEOUT = 1  # the server below takes far longer to answer
    with django_capture_on_commit_callbacks():
        row = queue()
    server.hold = True
    assert mail.send_outgoing_email(email_id=row.pk) is False  # no answer: not known sent
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("pending", 1)
    assert server.received.is_set()  # ...yet the server has the message: one copy out

    server.hold = False
    server.release.set()
    retry_at = row.next_attempt_at + timedelta(seconds=1)
    assert list(OutgoingEmail.objects.due(now=retry_at)) == [row]  # the sweep will retry it
    with time_machine.travel(retry_at):
        assert mail.send_outgoing_email(email_id=row.pk) is True
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("sent", 2)
    # Two copies reached the server; both are the one email, recognisable as such.
    assert server.message_ids() == [row.message_id, row.message_id]


@pytest.mark.django_db(transaction=True)
def test_a_send_slower_than_the_lease_keeps_its_claim(smtp_settings, smtp_server):
    smtp_settings.OUTBOX_SEND_LEASE_SECONDS = 1
    server = smtp_server.handler
    # Written, not published: this test is the only sender.
    row = OutgoingEmail.objects.create(to=["pat@example.com"], subject="Slow", body_text="x")
    server.hold = True
    results = []
    sender = threading.Thread(
        target=lambda: results.append(mail.send_outgoing_email(email_id=row.pk))
    )
    sender.start()
    try:
        assert server.received.wait(30)
        claimed = OutgoingEmail.objects.get(pk=row.pk)
        # Well past the first lease, the sender has renewed it (more than once)...
        assert wait_for(
            lambda: (
                OutgoingEmail.objects.get(pk=row.pk).lease_expires_at
                >= claimed.last_attempt_at + timedelta(seconds=3)
            ),
            timeout=30,
        )
        # ...so it is not taken for dead: the sweep and a second sender leave it alone.
        assert not OutgoingEmail.objects.due(now=timezone.now()).filter(pk=row.pk).exists()
        assert mail.send_outgoing_email(email_id=row.pk) is False
    finally:
        server.release.set()
        sender.join(60)
    assert results == [True]
    row.refresh_from_db()
    assert (row.state, row.attempts, row.lease_expires_at) == ("sent", 1, None)
    assert server.message_ids() == [row.message_id]


@pytest.mark.skipif(not REAL_WORKER, reason="a real worker process to kill (pass (b))")
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_leaves_one_copy_with_the_same_message_id(smtp_server, tmp_path):
    from clinic.celery import app

    server = smtp_server.handler
    server.hold = True
    saved_queue = app.conf.task_default_queue
    queue_name = app.conf.task_default_queue = f"clinic-test-kill-{uuid.uuid4().hex[:12]}"
    env = {
        "EMAIL_URL": f"smtp://{smtp_server.hostname}:{smtp_server.port}",
        "OUTBOX_SEND_LEASE_SECONDS": "2",
        "CELERY_DEFAULT_QUEUE": queue_name,
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    workers = []

    def worker(n):
        process = start_worker(
            queues=[queue_name], name=f"{queue_name}-{n}@localhost", env=env, log=log
        )
        workers.append(process)
        return process

    try:
        first = worker(1)
        with transaction.atomic():
            row = queue()
        # The worker has handed the message over and waits for the server's answer...
        assert server.received.wait(30), f"nothing reached the SMTP server; see {log.name}"
        claimed = OutgoingEmail.objects.get(pk=row.pk)
        assert claimed.state == "sending"
        # ...renewing its lease meanwhile (a slow server is not a dead sender)...
        assert wait_for(
            lambda: (
                OutgoingEmail.objects.get(pk=row.pk).lease_expires_at > claimed.lease_expires_at
            ),
            timeout=30,
        )
        # ...when it is killed: the server has the message, the row does not say so.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        server.hold = False
        server.release.set()
        assert OutgoingEmail.objects.get(pk=row.pk).state == "sending"

        worker(2)
        # Once the dead worker's lease has run out, the beat's sweep publishes it again.
        assert wait_for(lambda: mail.republish_due_emails() == 1, timeout=30)
        assert wait_for(lambda: OutgoingEmail.objects.get(pk=row.pk).state == "sent", timeout=30)
    finally:
        app.conf.task_default_queue = saved_queue
        for process in workers:
            stop_worker(process)
        log.close()
        with app.connection_for_write() as broker:
            broker.default_channel.queue_delete(queue_name)

    row.refresh_from_db()
    assert row.attempts == 2
    # One extra copy, no more, carrying the one Message-ID the row was written with.
    assert server.message_ids() == [row.message_id, row.message_id]
