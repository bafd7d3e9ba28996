from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = "Clinic"

    def ready(self):
        from . import pagecache, signals  # noqa: F401

        pagecache.connect_signals()
