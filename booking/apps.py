from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BookingConfig(AppConfig):
    name = "booking"

    def ready(self):
        # Registers this app's part of what the site holds about a person.
        from . import personal_data  # noqa: F401
        from .schedule_version import install_triggers

        # After every migrate: the triggers that bump the schedule version (see its module).
        post_migrate.connect(install_triggers, sender=self, dispatch_uid="booking:schedule")
