"""Celery entry points for booking: each calls a booking service and is safe to run twice."""

from datetime import datetime

from celery import shared_task
from django.db import OperationalError

from . import reminders, services


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


@shared_task(
    name="booking.tasks.offer_freed_time",
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def offer_freed_time_task(therapist_id, start):
    """Offer a freed time (ISO instant) to the waitlist; safe to run twice."""
    hold = services.offer_freed_time(therapist_id=therapist_id, start=datetime.fromisoformat(start))
    return hold.pk if hold else None


@shared_task(
    name="booking.tasks.end_expired_holds",
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=3,
    soft_time_limit=120,
    time_limit=180,
)
def end_expired_holds_task():
    """Beat: offer each unclaimed, expired hold's time to the next in line; count them."""
    return services.end_expired_holds()
