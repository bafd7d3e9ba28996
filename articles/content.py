"""The first article, its Spanish version and its topics, loaded by `manage.py load_content`
(safe to run again: what exists is left as staff made it)."""

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from clinic.content import fill_blank

from .models import Article, ArticleRedirect, ArticleTranslation, Author, Reference, Topic
from .services import record_sources, save_article, save_translation

CONTENT_DIR = Path(__file__).resolve().parent / "content"
# Dates in the content are the clinic's wall-clock times (settings.TIME_ZONE).
CLINIC_TZ = ZoneInfo(settings.TIME_ZONE)

TOPICS = [
    (
        "Low back pain",
        "low-back-pain",
        "Why the low back hurts, and the causes that sit elsewhere.",
    ),
    ("Calf and soleus", "calf-and-soleus", "The calf muscles and how they shape posture and gait."),
    ("Trigger points", "trigger-points", "Tight, tender spots in muscle that send pain elsewhere."),
    ("Posture and gait", "posture-and-gait", "How we stand and walk, and what changes it."),
]

TOPICS_ES = {
    "low-back-pain": (
        "Dolor lumbar",
        "Por qué duele la zona lumbar, y las causas que están en otra parte.",
    ),
    "calf-and-soleus": (
        "Pantorrilla y sóleo",
        "Los músculos de la pantorrilla y cómo influyen en la postura y la marcha.",
    ),
    "trigger-points": (
        "Puntos gatillo",
        "Zonas tensas y sensibles del músculo que envían dolor a otros lugares.",
    ),
    "posture-and-gait": ("Postura y marcha", "Cómo nos paramos y caminamos, y qué lo cambia."),
}

CALF_ARTICLE = {
    "slug": "tight-calf-muscles-low-back-pain",
    "title": "Are Tight Calf Muscles the Hidden Cause of Your Low Back Pain?",
    "summary": (
        "Tight calves can shift your posture and strain your low back. Learn how the soleus "
        "plays a part, which habits add to it, and how massage can help."
    ),
    "body_file": "calf-muscles-low-back-pain.md",
    "published_at": datetime(2026, 11, 24, 9, 0, tzinfo=CLINIC_TZ),
    "last_reviewed": date(2026, 11, 24),
    "next_review_due": date(2027, 11, 24),
    "topics": ["low-back-pain", "calf-and-soleus", "trigger-points", "posture-and-gait"],
    # Written afresh for Spanish-speaking patients, with the same facts and references.
    "translations": {
        "es": {
            "title": "¿Sus pantorrillas tensas son la causa oculta de su dolor de espalda baja?",
            "summary": (
                "Unas pantorrillas tensas pueden cambiar su postura y cargar la espalda baja. "
                "Sepa qué papel tiene el músculo sóleo, qué hábitos lo empeoran y cómo puede "
                "ayudar el masaje."
            ),
            "body_file": "calf-muscles-low-back-pain.es.md",
        },
    },
    "references": [
        {
            "authors": "Janda V",
            "year": 1987,
            "title": "Muscles and motor control in low back pain: assessment and management",
            "source": "In: Twomey LT, Taylor JR (eds). Physical Therapy of the Low Back. "
            "New York: Churchill Livingstone",
        },
        {
            "authors": "Janda V, Frank C, Liebenson C",
            "year": 2007,
            "title": "Evaluation of muscular imbalance",
            "source": "In: Liebenson C (ed). Rehabilitation of the Spine: A Practitioner's "
            "Manual, 2nd ed. Philadelphia: Lippincott Williams & Wilkins",
        },
    ],
}


def clinic_author():
    """The clinic's therapists as one author: a staff account that cannot log in."""
    user, created = get_user_model().objects.get_or_create(
        username="clinic-therapists", defaults={"is_staff": True, "first_name": "Clinic"}
    )
    if created:
        user.set_unusable_password()
        user.save()
    author, _ = Author.objects.get_or_create(
        user=user,
        defaults={
            "display_name": "The clinic's therapists",
            "credentials": "Licensed massage therapists",
            "bio": (
                "Our therapists treat pain with focused soft-tissue work and look for its "
                "cause beyond the spot that hurts."
            ),
        },
    )
    return author


@transaction.atomic
def load_article_content():
    """Create the topics, the calf article and its versions in other languages if missing;
    returns how many articles were added."""
    topics = {}
    for name, slug, description in TOPICS:
        topics[slug], _ = Topic.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )
        if slug in TOPICS_ES:
            name_es, description_es = TOPICS_ES[slug]
            fill_blank(
                Topic, topics[slug].pk, {"name_es": name_es, "description_es": description_es}
            )
    added = _load_article(CALF_ARTICLE, topics)
    _load_translations(CALF_ARTICLE)
    return added


def _load_article(spec, topics):
    # A slug staff changed since leaves a redirect: the article is there, keep their edit.
    if (
        Article.objects.filter(slug=spec["slug"]).exists()
        or ArticleRedirect.objects.filter(old_slug=spec["slug"]).exists()
    ):
        return 0
    article = Article(
        slug=spec["slug"],
        title=spec["title"],
        summary=spec["summary"],
        body=(CONTENT_DIR / spec["body_file"]).read_text(encoding="utf-8"),
        author=clinic_author(),
        status=Article.Status.PUBLISHED,
        published_at=spec["published_at"],
        last_reviewed=spec["last_reviewed"],
        next_review_due=spec["next_review_due"],
    )
    save_article(article=article)
    article.topics.set([topics[slug] for slug in spec["topics"]])
    Reference.objects.bulk_create(
        Reference(article=article, position=position, **reference)
        for position, reference in enumerate(spec["references"], start=1)
    )
    record_sources(article=article)
    return 1


def _load_translations(spec):
    """Add the article's missing versions in other languages, ready for readers.

    A version staff changed is left alone, and so is one they deleted (an earlier version
    of the article recorded it): only a language the article never had is added.
    """
    article = (
        Article.objects.filter(slug=spec["slug"]).first()
        or Article.objects.filter(old_slugs__old_slug=spec["slug"]).first()
    )
    if article is None:
        return
    had = {
        item["language"]
        for snapshot in article.history.values_list("sources_snapshot", flat=True)
        for item in (snapshot or {}).get("translations", [])
    }
    had |= set(article.translations.values_list("language", flat=True))
    added = False
    for language, fields in spec["translations"].items():
        if language in had:
            continue
        save_translation(
            translation=ArticleTranslation(
                article=article,
                language=language,
                title=fields["title"],
                summary=fields["summary"],
                body=(CONTENT_DIR / fields["body_file"]).read_text(encoding="utf-8"),
                status=ArticleTranslation.Status.READY,
            )
        )
        added = True
    if added:
        record_sources(article=article)
