"""Celery entry points for booking: each calls booking.services and is safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(
    name="booking.tasks.send_due_reminders",
    autoretry_for=(OperationalError,),  # the database away for a moment
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=3,
)
def send_due_reminders_task():
    """Beat: write the reminder of each appointment about 24 hours ahead; count them."""
    return services.send_due_reminders()


@shared_task(
    name="booking.tasks.apply_retention",
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    retry_backoff_max=600,
    max_retries=3,
)
def apply_retention_task():
    """Beat: clear old intake answers, anonymise old appointments; returns the counts."""
    return services.apply_retention()
