from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"

    def ready(self):
        # Registers this app's part of what the site holds about a person.
        from . import personal_data  # noqa: F401
