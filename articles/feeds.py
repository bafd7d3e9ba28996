"""RSS and Atom feeds of the newest published articles, with absolute links from SITE_URL."""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext, gettext_lazy

from clinic.services import get_clinic_profile

from .models import Article


class LatestArticlesFeed(Feed):
    """The feed in the language of its address (/es/... is Spanish): titles and <language>."""

    description = gettext_lazy("New patient-education articles from the clinic.")

    def title(self):
        profile = get_clinic_profile()
        return gettext("%(clinic)s: articles") % {
            "clinic": profile.name if profile else gettext("Clinic")
        }

    def link(self):
        return f"{settings.SITE_URL}{reverse('articles:list')}"

    def feed_url(self):
        return f"{settings.SITE_URL}{reverse('articles:rss')}"

    def items(self):
        # Titles and summaries in the feed's language where an article has a ready version.
        return (
            Article.objects.published()
            .select_related("author")
            .with_translation()
            .order_by("-published_at")[:20]
        )

    def item_title(self, item):
        return item.text.title

    def item_description(self, item):
        return item.text.summary

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
