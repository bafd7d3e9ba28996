"""Celery entry points for the outbox: each takes ids and calls clinic.mail."""

from celery import shared_task

from . import mail


@shared_task(name="clinic.tasks.send_email", acks_late=True)
def send_email_task(email_id):
    """Send one outbox row; safe to run twice (the second run finds it sent)."""
    return mail.send_outgoing_email(email_id=email_id)


@shared_task(name="clinic.tasks.republish_due_emails")
def republish_due_emails_task():
    """Beat: republish the emails whose task was lost (broker down, worker died) or failed."""
    return mail.republish_due_emails()
