"""Saving, publishing and unpublishing articles."""

from functools import partial

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from clinic.images import CleanImage
from clinic.locking import lock

from . import images
from .models import Article, ArticleRedirect, ArticleTranslation, Reference, Topic
from .rendering import render_markdown


@transaction.atomic
def save_article(*, article):
    """Validate and save `article`: render its body once, keep its old address working.

    A published article whose slug changes leaves an ArticleRedirect behind, so old
    links answer 301 instead of 404. A new hero image is re-encoded without metadata
    (in `full_clean`); it and its sizes are written only once the transaction commits, so
    a save that rolls back leaves no files, and the sizes it replaces are removed then.
    """
    previous = None
    if article.pk:
        previous = (
            Article.objects.filter(pk=article.pk)
            .values("slug", "status", "hero_image", "hero_renditions")
            .first()
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
    upload = _take_new_hero(article)
    old_sizes = (previous or {}).get("hero_renditions") or {}
    same_hero = previous is not None and previous["hero_image"] == article.hero_image.name
    if article.hero_image and same_hero and images.sizes_belong_to(old_sizes, article.pk):
        article.hero_renditions = old_sizes  # a version restored without its sizes
    needs_sizes = upload is not None or (
        article.hero_image and not images.sizes_belong_to(article.hero_renditions, article.pk)
    )
    if needs_sizes or not article.hero_image:
        article.hero_renditions = {}
    article.save()
    if needs_sizes:
        transaction.on_commit(
            partial(
                _write_hero_files,
                article_pk=article.pk,
                name=article.hero_image.name,
                data=upload,
                replaced=images.size_names(old_sizes),
            ),
            robust=True,
        )
    elif not article.hero_image and old_sizes:
        transaction.on_commit(partial(images.delete_files, images.size_names(old_sizes)))
    return article


def _take_new_hero(article):
    """The bytes of a new hero upload (re-encoded by `full_clean`), leaving only its name
    on `article` so that saving the row writes no file; None when the hero is not new."""
    hero = article.hero_image
    # `_committed` is how Django's FileField itself tells a new upload from a stored file.
    if not hero or hero._committed or not isinstance(hero.file, CleanImage):
        return None
    hero.file.seek(0)
    data = hero.file.read()
    article.hero_image = Article.hero_image.field.generate_filename(article, hero.name)
    return data


def _write_hero_files(*, article_pk, name, data, replaced):
    """After commit: store a new hero original (`data`), make its sizes, record them and
    delete the sizes they replace (`replaced`, and any written since)."""
    if data is not None:
        stored = default_storage.save(name, ContentFile(data))
        if stored != name:
            raise RuntimeError(f"Hero image {name} was stored as {stored}")
    sizes = images.make_renditions(article_pk=article_pk, name=name, data=data)
    with transaction.atomic():
        row = next(
            iter(
                lock(Article.objects.filter(pk=article_pk).values("hero_image", "hero_renditions"))
            ),
            None,
        )
        if row is None or row["hero_image"] != name:
            stale = images.size_names(sizes)  # the article moved on (or went) meanwhile
        else:
            Article.objects.filter(pk=article_pk).update(hero_renditions=sizes)
            stale = replaced | images.size_names(row["hero_renditions"])
    images.delete_files(stale - images.size_names(sizes))


def save_translation(*, translation):
    """Validate and save a version of an article in another language, its body rendered once.

    Its [@N] markers are rendered as the English ones are, so they link to the same
    numbered references on the page.
    """
    translation.body_html = render_markdown(translation.body)
    translation.full_clean()
    translation.save()
    return translation


TRANSLATION_FIELDS = ("language", "title", "summary", "body", "status")


def sources_of(article):
    """The article's topics, references and versions in other languages as plain data."""
    return {
        "topics": sorted(article.topics.values_list("pk", flat=True)),
        "references": list(
            article.references.order_by("position").values(
                "position", "authors", "year", "title", "source", "doi", "url"
            )
        ),
        "translations": list(article.translations.order_by("language").values(*TRANSLATION_FIELDS)),
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
    """Put back the topics, references and versions in other languages an earlier version
    of `article` had (a version recorded before translations existed leaves today's)."""
    snapshot = version.sources_snapshot or {}
    if not snapshot:
        return  # a version older than snapshots: leave today's sources alone
    article.topics.set(Topic.objects.filter(pk__in=snapshot.get("topics", [])))
    article.references.all().delete()
    Reference.objects.bulk_create(
        Reference(article=article, **reference) for reference in snapshot.get("references", [])
    )
    if "translations" in snapshot:
        kept = {item["language"]: item for item in snapshot["translations"]}
        article.translations.exclude(language__in=list(kept)).delete()
        for language, fields in kept.items():
            translation = article.translations.filter(language=language).first()
            translation = translation or ArticleTranslation(article=article)
            for name in TRANSLATION_FIELDS:
                setattr(translation, name, fields[name])
            save_translation(translation=translation)
    record_sources(article=article)


@transaction.atomic
def revert_article(*, article, version, save_m2m=None):
    """Put `article` back as `version` of it had it: fields, topics and references at once.

    `article` carries the version's fields as staff confirmed them on the revert page, and
    `save_m2m` (the admin form's) saves that page's topics; the version's recorded topics
    and references then go back over them. One transaction, under the article's row lock:
    a failure at any step leaves the article as it was, without a new version.
    """
    if version.id != article.pk:
        raise ValueError(f"Version {version.history_id} is not a version of article {article.pk}")
    lock(Article.objects.filter(pk=article.pk))
    save_article(article=article)
    if save_m2m is not None:
        save_m2m()
    if version.sources_snapshot:
        restore_sources(article=article, version=version)
    else:
        record_sources(article=article)  # a version older than snapshots keeps today's
    return article


def _by_pk(articles):
    """`articles` by pk, so they can be locked: the admin's joins cannot be."""
    return Article.objects.filter(pk__in=list(articles.values_list("pk", flat=True)))


def publish_articles(*, articles, now=None):
    """Publish each draft; one without a publish date goes live now. Returns how many changed."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        for article in lock(_by_pk(articles).exclude(status=Article.Status.PUBLISHED)):
            article.status = Article.Status.PUBLISHED
            article.published_at = article.published_at or now
            save_article(article=article)
            count += 1
    return count


def unpublish_articles(*, articles):
    """Take articles off the site (back to draft). Returns how many changed."""
    count = 0
    with transaction.atomic():
        for article in lock(_by_pk(articles).filter(status=Article.Status.PUBLISHED)):
            article.status = Article.Status.DRAFT
            save_article(article=article)
            count += 1
    return count
