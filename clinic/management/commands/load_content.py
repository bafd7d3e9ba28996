from django.core.management.base import BaseCommand

from articles.content import load_article_content
from booking.content import load_booking_content
from clinic.content import load_clinic_content


class Command(BaseCommand):
    help = (
        "Load the clinic's profile, demo hours, first article and demo schedule "
        "(safe to run again)."
    )

    def handle(self, *args, **options):
        profile = load_clinic_content()
        articles = load_article_content()
        therapists = load_booking_content()
        self.stdout.write(
            f"Clinic content ready: {profile.name}; {articles} article(s) and "
            f"{therapists} therapist(s) added."
        )
