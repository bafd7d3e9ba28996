"""Celery entry points for the newsletter: each takes ids (or nothing) and calls services."""

from celery import shared_task

from . import services


@shared_task(name="newsletter.tasks.purge_unconfirmed")
def purge_unconfirmed_task():
    """Beat: forget sign-ups never confirmed within 30 days."""
    return services.purge_unconfirmed()
