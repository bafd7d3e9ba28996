"""Saving, publishing and unpublishing articles."""

from django.db import transaction
from django.utils import timezone

from .images import make_renditions
from .models import Article, ArticleRedirect, Reference, Topic
from .rendering import render_markdown


@transaction.atomic
def save_article(*, article):
    """Validate and save `article`: render its body once, keep its old address working.

    A published article whose slug changes leaves an ArticleRedirect behind, so old
    links answer 301 instead of 404.
    """
    previous = None
    if article.pk:
        previous = (
            Article.objects.filter(pk=article.pk).values("slug", "status", "hero_image").first()
        )
    article.body_html = render_markdown(article.body)
    article.full_clean()
    if article.is_live():
        # A live article now answers at this address: an old redirect from it must go.
        # A draft leaves it alone, so the old link keeps working until it goes live.
        ArticleRedirect.objects.filter(old_slug=article.slug).delete()
    renamed = previous and previous["slug"] != article.slug
    if renamed and previous["status"] == Article.Status.PUBLISHED:
        ArticleRedirect.objects.update_or_create(
            old_slug=previous["slug"], defaults={"article": article}
        )
    hero_changed = article.hero_image and (
        previous is None
        or previous["hero_image"] != article.hero_image.name
        or not article.hero_renditions
    )
    if not article.hero_image:
        article.hero_renditions = {}
    article.save()
    if hero_changed:
        article.hero_renditions = make_renditions(article.hero_image)
        Article.objects.filter(pk=article.pk).update(hero_renditions=article.hero_renditions)
    return article


def sources_of(article):
    """The article's topics and references as plain data."""
    return {
        "topics": sorted(article.topics.values_list("pk", flat=True)),
        "references": list(
            article.references.order_by("position").values(
                "position", "authors", "year", "title", "source", "doi", "url"
            )
        ),
    }


def record_sources(*, article):
    """Keep the article's topics and references on it and on its newest version.

    The admin saves topics and references after the article itself (and after its
    version was written), so they are added to that version here.
    """
    snapshot = sources_of(article)
    Article.objects.filter(pk=article.pk).update(sources_snapshot=snapshot)
    latest = article.history.order_by("-history_date", "-history_id").first()
    if latest is not None:
        type(latest).objects.filter(pk=latest.pk).update(sources_snapshot=snapshot)
    return snapshot


@transaction.atomic
def restore_sources(*, article, version):
    """Put back the topics and references an earlier version of `article` had."""
    snapshot = version.sources_snapshot or {}
    if not snapshot:
        return  # a version older than snapshots: leave today's sources alone
    article.topics.set(Topic.objects.filter(pk__in=snapshot.get("topics", [])))
    article.references.all().delete()
    Reference.objects.bulk_create(
        Reference(article=article, **reference) for reference in snapshot.get("references", [])
    )
    record_sources(article=article)


def _locked(articles):
    """The rows of `articles`, locked; by pk, since the admin's joins cannot be locked."""
    return Article.objects.select_for_update().filter(
        pk__in=list(articles.values_list("pk", flat=True))
    )


def publish_articles(*, articles, now=None):
    """Publish each draft; one without a publish date goes live now. Returns how many changed."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        for article in _locked(articles).exclude(status=Article.Status.PUBLISHED):
            article.status = Article.Status.PUBLISHED
            article.published_at = article.published_at or now
            save_article(article=article)
            count += 1
    return count


def unpublish_articles(*, articles):
    """Take articles off the site (back to draft). Returns how many changed."""
    count = 0
    with transaction.atomic():
        for article in _locked(articles).filter(status=Article.Status.PUBLISHED):
            article.status = Article.Status.DRAFT
            save_article(article=article)
            count += 1
    return count
