"""Celery entry points for the site: the outbox (each takes ids and calls clinic.mail) and
the retention of personal data."""

from celery import shared_task
from django.db import OperationalError

from . import mail, personal_data


@shared_task(name="clinic.tasks.send_email", acks_late=True)
def send_email_task(email_id):
    """Send one outbox row; safe to run twice (the second run finds it sent)."""
    return mail.send_outgoing_email(email_id=email_id)


@shared_task(name="clinic.tasks.republish_due_emails")
def republish_due_emails_task():
    """Beat: republish the emails whose task was lost (broker down, worker died) or failed."""
    return mail.republish_due_emails()


@shared_task(
    name="clinic.tasks.apply_retention",
    autoretry_for=(OperationalError,),  # the database away for a moment
    retry_backoff=60,
    retry_backoff_max=600,
    max_retries=3,
)
def apply_retention_task():
    """Beat: each app drops the personal data kept longer than the settings allow (old
    intake answers, old appointments, old emails); returns the counts."""
    return personal_data.apply_retention()


@shared_task(name="booking.tasks.apply_retention")
def apply_retention_under_its_old_name_task():
    """The retention task under the name it had before it moved here from booking: a message
    an older beat queued just before a deploy still runs, instead of being dropped by the
    worker as unregistered. Remove once every deployment has run a release with the new name
    for a day (the beat queues it daily)."""
    return apply_retention_task()
