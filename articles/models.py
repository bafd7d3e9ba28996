"""Patient-education articles: topics, authors, references and slug redirects."""

import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection, models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import cached_property
from simple_history.models import HistoricalRecords

from clinic.i18n import language_name, other_languages
from clinic.images import sanitise_upload

WORDS_PER_MINUTE = 200
# Articles are written in English; staff may add a version in each of these languages.
ORIGINAL_LANGUAGE = settings.LANGUAGE_CODE
TRANSLATION_LANGUAGES = [(code, language_name(code)) for code in other_languages()]


def page_language(code=None):
    """The language a page is in ("en", "es"), from `code` or the active one (set by the URL)."""
    code = code or translation.get_language() or settings.LANGUAGE_CODE
    return code.split("-")[0].lower()


def _words_match(words, fields):
    """Every word of `words` appears in one of `fields` (word matching, case-insensitive)."""
    matches = Q()
    for word in words:
        any_field = Q()
        for field in fields:
            any_field |= Q(**{f"{field}__icontains": word})
        matches &= any_field
    return matches


class TopicQuerySet(models.QuerySet):
    def live(self):
        """Topics with at least one live article (the others would lead to empty pages)."""
        return self.filter(
            models.Exists(Article.objects.published().filter(topics=models.OuterRef("pk")))
        )


class Topic(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, help_text="One or two sentences for the topic page.")
    name_es = models.CharField("name in Spanish", max_length=80, blank=True)
    description_es = models.TextField("description in Spanish", blank=True)

    objects = TopicQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("articles:topic", kwargs={"slug": self.slug})


class Author(models.Model):
    """A staff member as readers see them: name, credentials and a short bio."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        limit_choices_to={"is_staff": True},
        related_name="author_profile",
    )
    display_name = models.CharField(max_length=120)
    credentials = models.CharField(max_length=120, blank=True, help_text="E.g. LMT, CMT.")
    bio = models.TextField(max_length=600, help_text="A short public bio (a few sentences).")

    class Meta:
        ordering = ["display_name"]

    def __str__(self):
        return f"{self.display_name}, {self.credentials}" if self.credentials else self.display_name


class ArticleQuerySet(models.QuerySet):
    def published(self, now=None):
        """Live articles: published, with a publish date that has come (decided at query time)."""
        now = now or timezone.now()
        return self.filter(status=Article.Status.PUBLISHED, published_at__lte=now)

    def for_cards(self, language=None):
        """Everything a list card shows, in `language` (the page's) where it can, in a fixed
        number of queries."""
        return (
            self.select_related("author")
            .prefetch_related("topics")
            .with_translation(language)
            .order_by("-published_at")
        )

    def with_translation(self, language=None):
        """Fetch each article's readable version in `language` (the page's) with the articles,
        so `Article.text_in` needs no query; nothing to fetch for English, the original."""
        language = page_language(language)
        if language == ORIGINAL_LANGUAGE:
            return self
        return self.prefetch_related(
            Prefetch(
                "translations",
                queryset=ArticleTranslation.objects.ready().filter(language=language),
                to_attr="ready_translations",
            )
        )

    def due_for_review(self, today=None):
        return self.filter(next_review_due__lte=today or timezone.localdate())

    def search(self, text, language=None):
        """Articles matching `text`: ranked full-text search on PostgreSQL, words on SQLite.

        On a page in another language (Spanish), an article is searched in that language's
        version where it has a readable one, else in English; by words on every database,
        since the stored PostgreSQL document is English-stemmed.
        """
        words = text.split()[:12]
        language = page_language(language)
        if language != ORIGINAL_LANGUAGE:
            versions = ArticleTranslation.objects.ready().filter(
                article=OuterRef("pk"), language=language
            )
            translated = versions.filter(_words_match(words, ["title", "summary", "body"]))
            return self.filter(
                Exists(translated)
                | (~Exists(versions) & _words_match(words, ["title", "summary", "body"]))
            ).order_by("-published_at")
        if connection.vendor == "postgresql":
            # The weighted document is a stored, GIN-indexed column that only PostgreSQL
            # has (migration 0002), so the model does not declare it.
            vector = RawSQL(  # noqa: S611  # nosec B611 # a fixed column name, no user input
                f"{Article._meta.db_table}.search_vector", [], output_field=SearchVectorField()
            )
            query = SearchQuery(text, search_type="websearch", config="english")
            return (
                self.annotate(document=vector, rank=SearchRank(vector, query))
                .filter(document=query)
                .order_by("-rank", "-published_at")
            )
        return self.filter(_words_match(words, ["title", "summary", "body"])).order_by(
            "-published_at"
        )

    def related_to(self, article, limit=3):
        """Other live articles ranked by how many topics they share with `article`."""
        topic_ids = [topic.pk for topic in article.topics.all()]
        if not topic_ids:
            return self.none()
        return (
            self.published()
            .exclude(pk=article.pk)
            .filter(topics__in=topic_ids)
            .annotate(shared=Count("topics", filter=Q(topics__in=topic_ids), distinct=True))
            .order_by("-shared", "-published_at")
            .select_related("author")
            .distinct()[:limit]
        )


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    title = models.CharField(max_length=140)
    slug = models.SlugField(
        max_length=140, unique=True, help_text="The address: changing it keeps the old one working."
    )
    summary = models.CharField(
        max_length=300, help_text="One or two sentences for cards and search engines."
    )
    body = models.TextField(
        help_text="Markdown. Cite a reference by its number in the list below: [@1]."
    )
    body_html = models.TextField(editable=False, blank=True)
    hero_image = models.ImageField(upload_to="articles/hero/", blank=True)
    hero_alt = models.CharField(
        "hero image description",
        max_length=200,
        blank=True,
        help_text="What the image shows, for readers who cannot see it (required with an image).",
    )
    hero_renditions = models.JSONField(default=dict, blank=True, editable=False)
    # Topics and references as they were at each save, so restoring a version restores them.
    sources_snapshot = models.JSONField(default=dict, blank=True, editable=False)
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="articles")
    reviewer = models.ForeignKey(
        Author,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reviewed_articles",
        verbose_name="medical reviewer",
    )
    last_reviewed = models.DateField(null=True, blank=True)
    next_review_due = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(
        "publish date",
        null=True,
        blank=True,
        db_index=True,
        help_text="A future date schedules the article: it goes live by itself then.",
    )
    topics = models.ManyToManyField(Topic, related_name="articles", blank=True)
    recommended_service = models.ForeignKey(
        "booking.Service",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recommended_by",
        help_text="The article's call to book opens the booking with this treatment chosen.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["hero_renditions"])
    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="published") | Q(published_at__isnull=False),
                name="article_published_has_date",
            ),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        # Through save_article the upload is already a clean copy; this guards any other path.
        sanitise_upload(self.hero_image)
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("articles:detail", kwargs={"slug": self.slug})

    def clean(self):
        errors = {}
        try:
            sanitise_upload(self.hero_image)
        except ValidationError as error:
            errors["hero_image"] = error.messages
        if self.hero_image and not self.hero_alt.strip():
            errors["hero_alt"] = "Describe the image for readers who cannot see it."
        if self.status == self.Status.PUBLISHED and not self.published_at:
            errors["published_at"] = "Give a publish date (now, or a future date to schedule)."
        if (
            self.last_reviewed
            and self.next_review_due
            and self.next_review_due < self.last_reviewed
        ):
            errors["next_review_due"] = "The next review cannot come before the last one."
        if errors:
            raise ValidationError(errors)

    def is_live(self, now=None):
        now = now or timezone.now()
        return (
            self.status == self.Status.PUBLISHED
            and self.published_at is not None
            and self.published_at <= now
        )

    @cached_property
    def hero_sizes(self):
        """The hero image's sizes, smallest first: [{"url", "width", "height"}]."""
        return [
            {
                "url": default_storage.url(size["name"]),
                "width": int(width),
                "height": size["height"],
            }
            for width, size in sorted(self.hero_renditions.items(), key=lambda item: int(item[0]))
        ]

    @property
    def hero_srcset(self):
        return ", ".join(f"{size['url']} {size['width']}w" for size in self.hero_sizes)

    @property
    def reading_minutes(self):
        return reading_minutes(self.body)

    def text_in(self, language=None):
        """What readers of a page in `language` see: its readable version in that language,
        else the English original (`ArticleText.is_fallback` then says so).

        Uses the versions `ArticleQuerySet.with_translation` fetched; one query without.
        """
        language = page_language(language)
        version = None
        if language != ORIGINAL_LANGUAGE:
            found = getattr(self, "ready_translations", None)
            if found is None:
                found = list(self.translations.ready().filter(language=language)[:1])
            version = found[0] if found else None
        return ArticleText.of(version or self, requested=language)

    @property
    def text(self):
        """The article's text as a page in the active language shows it."""
        return self.text_in()


def reading_minutes(body):
    return max(1, math.ceil(len(body.split()) / WORDS_PER_MINUTE))


@dataclass(frozen=True)
class ArticleText:
    """An article's words in one language, as a page shows them."""

    language: str
    requested: str
    title: str
    summary: str
    body_html: str
    reading_minutes: int

    @classmethod
    def of(cls, source, *, requested):
        return cls(
            language=getattr(source, "language", ORIGINAL_LANGUAGE),
            requested=requested,
            title=source.title,
            summary=source.summary,
            body_html=source.body_html,
            reading_minutes=source.reading_minutes,
        )

    @property
    def is_fallback(self):
        """True when the page asked for another language and shows the English original."""
        return self.language != self.requested


class ArticleTranslationQuerySet(models.QuerySet):
    def ready(self):
        """Versions staff marked ready; readers see one only while its article is live."""
        return self.filter(status=ArticleTranslation.Status.READY)


class ArticleTranslation(models.Model):
    """The article in another language, written by staff beside the English original.

    It shares everything but the words with its article: address (the same slug under the
    language's prefix), publishing, author, review dates, topics and references, which its
    [@N] markers cite. Its text is kept in each version of the article (sources_snapshot),
    so the article's history and revert include it.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (not shown)"
        READY = "ready", "Ready (shown while the article is published)"

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(
        max_length=7, choices=TRANSLATION_LANGUAGES, default=TRANSLATION_LANGUAGES[0][0]
    )
    title = models.CharField(max_length=140)
    summary = models.CharField(
        max_length=300, help_text="One or two sentences for cards and search engines."
    )
    body = models.TextField(
        help_text="Markdown. Cite the article's references by number, as in English: [@1]."
    )
    body_html = models.TextField(editable=False, blank=True)
    status = models.CharField(
        max_length=10,
        choices=Status.choices,
        default=Status.DRAFT,
        help_text="A draft stays hidden; readers of this language see the English original.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleTranslationQuerySet.as_manager()

    class Meta:
        ordering = ["language"]
        verbose_name = "version in another language"
        verbose_name_plural = "versions in other languages"
        constraints = [
            models.UniqueConstraint(
                fields=["article", "language"], name="article_translation_one_per_language"
            ),
            models.CheckConstraint(
                condition=Q(language__in=[code for code, _name in TRANSLATION_LANGUAGES]),
                name="article_translation_known_language",
            ),
        ]

    def __str__(self):
        return f"{self.get_language_display()}: {self.title}"

    def get_absolute_url(self):
        with translation.override(self.language):
            return self.article.get_absolute_url()

    @property
    def reading_minutes(self):
        return reading_minutes(self.body)


class Reference(models.Model):
    """One numbered source of an article; [@N] in the body links to the Nth."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="references")
    position = models.PositiveSmallIntegerField(help_text="Its number in the list (1, 2, …).")
    authors = models.CharField(max_length=300)
    year = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=400)
    source = models.CharField(max_length=400, help_text="Journal or book, publisher, pages.")
    doi = models.CharField("DOI", max_length=200, blank=True)
    url = models.URLField("URL", max_length=500, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["article", "position"], name="reference_unique_position"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1), name="reference_position_from_one"
            ),
        ]

    def __str__(self):
        return f"{self.authors} ({self.year}). {self.title}"

    @property
    def link(self):
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return self.url


class ArticleRedirect(models.Model):
    """An old address of a published article, answered with a 301 to its current one."""

    old_slug = models.SlugField(max_length=140, unique=True)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="old_slugs")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.old_slug} → {self.article.slug}"
