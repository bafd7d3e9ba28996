"""Celery entry points for booking: each calls a booking service and is safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from . import reminders


@shared_task(
    name="booking.tasks.send_due_reminders",
    autoretry_for=(OperationalError,),  # the database away for a moment
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=3,
)
def send_due_reminders_task():
    """Beat: write the reminder of each appointment about 24 hours ahead; count them."""
    return reminders.send_due_reminders()
