"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

from .logging import task_finished, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_as_the_site_does(**kwargs):
    """Workers and beat write the site's JSON lines (settings.LOGGING), not Celery's own
    format: connecting this signal stops Celery from configuring logging itself."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# One line per task, from the worker (or, on the embedded default, the web process).
task_prerun.connect(task_started, dispatch_uid="clinic.task_started")
task_postrun.connect(task_finished, dispatch_uid="clinic.task_finished")
