from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "booking"

    def ready(self):
        # Registers this app's part of what the site holds about a person.
        from . import personal_data  # noqa: F401
