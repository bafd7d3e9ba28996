"""schema.org JSON-LD for an article: a MedicalWebPage, reviewed, cited, published by the clinic."""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext

from clinic.seo import clinic_publisher
from clinic.services import get_clinic_profile


def _person(author):
    person = {"@type": "Person", "name": author.display_name}
    if author.credentials:
        person["jobTitle"] = author.credentials
    return person


# schema.org's inLanguage for the language of an article's text.


def article_jsonld(article, text=None):
    """The page's MedicalWebPage; `text` is the article's words as the page shows them
    (a version in another language, or the English original)."""
    text = text or article.text_in()
    url = f"{settings.SITE_URL}{article.get_absolute_url()}"
    data = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "name": text.title,
        "headline": text.title,
        "description": text.summary,
        "inLanguage": f"{text.language}-{settings.LOCALE_REGION}",
        "author": _person(article.author),
        "about": [{"@type": "Thing", "name": topic.name} for topic in article.topics.all()],
        "citation": [
            {
                "@type": "CreativeWork",
                "name": reference.title,
                "author": reference.authors,
                "datePublished": str(reference.year),
                "publisher": reference.source,
                **({"url": reference.link} if reference.link else {}),
            }
            for reference in article.references.all()
        ],
        "dateModified": article.updated_at.isoformat() if article.updated_at else None,
        "breadcrumb": {
            "@type": "BreadcrumbList",
            "itemListElement": [
                {
                    "@type": "ListItem",
                    "position": 1,
                    "name": gettext("Home"),
                    "item": f"{settings.SITE_URL}{reverse('home')}",
                },
                {
                    "@type": "ListItem",
                    "position": 2,
                    "name": gettext("Articles"),
                    "item": f"{settings.SITE_URL}{reverse('articles:list')}",
                },
                {"@type": "ListItem", "position": 3, "name": text.title, "item": url},
            ],
        },
    }
    if article.published_at:
        data["datePublished"] = article.published_at.isoformat()
    if article.last_reviewed:
        data["lastReviewed"] = article.last_reviewed.isoformat()
    if article.reviewer:
        data["reviewedBy"] = _person(article.reviewer)
    profile = get_clinic_profile()
    if profile:
        data["publisher"] = clinic_publisher(profile)
    if article.hero_sizes:
        data["image"] = f"{settings.SITE_URL}{article.hero_sizes[-1]['url']}"
    return data
