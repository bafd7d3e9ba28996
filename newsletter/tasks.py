"""Celery entry points for the newsletter: each takes ids (or nothing) and calls services."""

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(name="newsletter.tasks.purge_unconfirmed")
def purge_unconfirmed_task():
    """Beat: forget sign-ups never confirmed within 30 days."""
    return services.purge_unconfirmed()


@shared_task(
    name="newsletter.tasks.fan_out_issue",
    autoretry_for=(OperationalError,),  # the database away for a moment
    retry_backoff=30,
    retry_backoff_max=300,
    max_retries=5,
)
def fan_out_issue_task(issue_id):
    """Write an issue's copies in batches; hands over to a fresh task before its time limit.

    Safe to run twice: a copy is written once per subscriber whatever runs it.
    """
    if not services.fan_out_issue(issue_id=issue_id):
        services.publish_fan_out(fan_out_issue_task, issue_id)
