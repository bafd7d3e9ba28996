from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "clinic-demo-only"


class Command(BaseCommand):
    help = "Create the demo staff login for the embedded default (never in production)."

    def handle(self, *args, **options):
        if not settings.DEBUG or connection.vendor != "sqlite":
            raise CommandError(
                "The demo login exists only on the embedded default (DEBUG on, SQLite). "
                "Use `manage.py createsuperuser` elsewhere."
            )
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Staff login (demo only): {DEMO_USERNAME} / {DEMO_PASSWORD} "
                f"at http://127.0.0.1:8000/{settings.ADMIN_URL}"
            )
        )
