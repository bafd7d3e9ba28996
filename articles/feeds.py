"""RSS and Atom feeds of the newest published articles, with absolute links from SITE_URL."""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed

from clinic.services import get_clinic_profile

from .models import Article


class LatestArticlesFeed(Feed):
    description = "New patient-education articles from the clinic."

    def title(self):
        profile = get_clinic_profile()
        return f"{profile.name if profile else 'Clinic'}: articles"

    def link(self):
        return f"{settings.SITE_URL}{reverse('articles:list')}"

    def feed_url(self):
        return f"{settings.SITE_URL}{reverse('articles:rss')}"

    def items(self):
        return Article.objects.published().select_related("author").order_by("-published_at")[:20]

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return item.summary

    def item_link(self, item):
        return f"{settings.SITE_URL}{item.get_absolute_url()}"

    def item_pubdate(self, item):
        return item.published_at

    def item_updateddate(self, item):
        return item.updated_at

    def item_author_name(self, item):
        return item.author.display_name


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = Atom1Feed
    subtitle = LatestArticlesFeed.description

    def feed_url(self):
        return f"{settings.SITE_URL}{reverse('articles:atom')}"
