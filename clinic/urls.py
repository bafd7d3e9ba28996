from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path, re_path

from articles.sitemaps import sitemaps

from . import views

# Pages patients read: English at these addresses, Spanish under /es/.
urlpatterns = i18n_patterns(
    path("", views.home, name="home"),
    path("articles/", include("articles.urls")),
    path("book/", include("booking.urls")),
    path("newsletter/", include("newsletter.urls")),
    prefix_default_language=False,
)
# One address for everyone: machines, staff and files.
urlpatterns += [
    path("healthz", views.health, name="health"),
    path("robots.txt", views.robots_txt, name="robots"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("sitemap.xml", sitemap, {"sitemaps": sitemaps}, name="sitemap"),
    path(settings.ADMIN_URL, admin.site.urls),
    # Uploaded images (article heroes) are few and small: the site serves them itself.
    re_path(r"^media/(?P<path>.*)$", views.media, name="media"),
]

handler500 = "clinic.views.server_error"
