"""sitemap.xml: static pages, live articles and live topics, in English and Spanish."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from .models import Article, Topic


class SiteUrlSitemap(Sitemap):
    """Locations on SITE_URL's host and scheme, whatever host the request came to.

    Every page is listed in each language (English unprefixed, Spanish under /es/), each
    entry naming its twins and the English page as x-default.
    """

    i18n = True
    alternates = True
    x_default = True

    def get_protocol(self, protocol=None):
        return urlsplit(settings.SITE_URL).scheme

    def get_domain(self, site=None):
        return urlsplit(settings.SITE_URL).netloc


class StaticPagesSitemap(SiteUrlSitemap):
    changefreq = "monthly"

    def items(self):
        return ["home", "articles:list", "booking:start", "newsletter:signup"]

    def location(self, item):
        return reverse(item)


class ArticleSitemap(SiteUrlSitemap):
    changefreq = "monthly"

    def items(self):
        return Article.objects.published().order_by("-published_at").only("slug", "updated_at")

    def lastmod(self, item):
        return item.updated_at


class TopicSitemap(SiteUrlSitemap):
    changefreq = "weekly"

    def items(self):
        return Topic.objects.live().order_by("name")


sitemaps = {"pages": StaticPagesSitemap, "articles": ArticleSitemap, "topics": TopicSitemap}
