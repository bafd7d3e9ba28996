from django.core.management.base import BaseCommand

from articles.content import load_article_content
from clinic.content import load_clinic_content


class Command(BaseCommand):
    help = "Load the clinic's profile, demo hours and first article (safe to run again)."

    def handle(self, *args, **options):
        profile = load_clinic_content()
        articles = load_article_content()
        self.stdout.write(f"Clinic content ready: {profile.name}; {articles} article(s) added.")
