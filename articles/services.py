"""Saving, publishing and unpublishing articles."""

from django.db import transaction
from django.utils import timezone

from .images import make_renditions
from .models import Article, ArticleRedirect
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
    if previous and previous["slug"] != article.slug:
        ArticleRedirect.objects.filter(old_slug=article.slug).delete()
        if previous["status"] == Article.Status.PUBLISHED:
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
