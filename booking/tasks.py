"""Celery entry points for booking: each calls a booking service and is safe to run twice."""

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
    name="booking.tasks.offer_vacancy",
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def offer_vacancy_task(vacancy_id):
    """Offer a freed time to the waitlist; safe to run twice (the second finds it offered)."""
    return [hold.pk for hold in services.offer_vacancy(vacancy_id=vacancy_id)]


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
    """Beat: offer each unclaimed, expired hold's time to the next in line, and any freed
    time whose task was lost; returns how many holds ended."""
    ended = services.end_expired_holds()
    services.offer_pending_vacancies()
    return ended
