import re

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from booking.models import with_booking_counts

from . import services
from .models import Article, ArticleRedirect, ArticleTranslation, Author, Reference, Topic
from .rendering import cited_numbers

BOOKINGS_30_DAYS = "Booked in the last 30 days (not counting cancelled)"
BOOKINGS_365_DAYS = "Booked in the last 365 days (not counting cancelled)"


# The bodies of the versions in other languages, as posted with the same change form.
_TRANSLATION_BODY = re.compile(r"^translations-(\d+)-body$")


def _posted_translation_bodies(data):
    """The bodies of the other-language versions posted beside the references (not deleted)."""
    return [
        value
        for key, value in data.items()
        if (match := _TRANSLATION_BODY.match(key))
        and not data.get(f"translations-{match.group(1)}-DELETE")
    ]


class ReferenceFormSet(BaseInlineFormSet):
    def clean(self):
        """Every [@N] in the body, and in each version in another language, must have a
        reference N in the list below it: all versions cite the same list."""
        super().clean()
        if any(self.errors):
            return
        positions = {
            form.cleaned_data["position"]
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        }
        missing = sorted(cited_numbers(self.instance.body or "") - positions)
        if missing:
            raise ValidationError(
                "The body cites %(cited)s but the list has no such reference. "
                "Add it below, or fix the marker.",
                params={"cited": ", ".join(f"[@{n}]" for n in missing)},
            )
        cited_elsewhere = set()
        for body in _posted_translation_bodies(self.data):
            cited_elsewhere |= cited_numbers(body)
        missing = sorted(cited_elsewhere - positions)
        if missing:
            raise ValidationError(
                "A version in another language cites %(cited)s but the list has no such "
                "reference. Add it below, or fix the marker.",
                params={"cited": ", ".join(f"[@{n}]" for n in missing)},
            )


class ReferenceInline(admin.StackedInline):
    model = Reference
    formset = ReferenceFormSet
    extra = 0
    fields = [("position", "year"), "authors", "title", "source", ("doi", "url")]


class TranslationInline(admin.StackedInline):
    """The article in Spanish, written beside the English; it shares the references above."""

    model = ArticleTranslation
    extra = 0
    max_num = len(ArticleTranslation._meta.get_field("language").choices)
    fields = ["language", "status", "title", "summary", "body", "updated_at"]
    readonly_fields = ["updated_at"]


class ReviewDueFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue for review"), ("scheduled", "Review date set")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.due_for_review(timezone.localdate())
        if self.value() == "scheduled":
            return queryset.filter(next_review_due__isnull=False)
        return queryset


@admin.register(Article)
class ArticleAdmin(SimpleHistoryAdmin):
    list_display = [
        "title",
        "status",
        "published_at",
        "topic_list",
        "reviewer",
        "last_reviewed",
        "next_review_due",
        "bookings_30",
        "bookings_365",
    ]
    list_filter = ["status", ReviewDueFilter, "topics", "author"]
    search_fields = ["title", "summary", "body"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["topics"]
    inlines = [ReferenceInline, TranslationInline]
    actions = ["publish", "unpublish"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "summary", "body"]}),
        ("Hero image", {"fields": ["hero_image", "hero_alt"], "classes": ["collapse"]}),
        ("People and topics", {"fields": ["author", "topics"]}),
        ("Call to book", {"fields": ["recommended_service"]}),
        ("Medical review", {"fields": ["reviewer", "last_reviewed", "next_review_due"]}),
        ("Publishing", {"fields": ["status", "published_at", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        articles = super().get_queryset(request).select_related("reviewer")
        return with_booking_counts(articles.prefetch_related("topics"), now=timezone.now())

    @admin.display(description=BOOKINGS_30_DAYS, ordering="bookings_30")
    def bookings_30(self, obj):
        return obj.bookings_30

    @admin.display(description=BOOKINGS_365_DAYS, ordering="bookings_365")
    def bookings_365(self, obj):
        return obj.bookings_365

    @admin.display(description="topics")
    def topic_list(self, obj):
        return ", ".join(topic.name for topic in obj.topics.all())

    def save_formset(self, request, form, formset, change):
        if formset.model is not ArticleTranslation:
            return super().save_formset(request, form, formset, change)
        for translation in formset.save(commit=False):
            services.save_translation(translation=translation)
        for translation in formset.deleted_objects:
            translation.delete()
        return None

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.record_sources(article=form.instance)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """Reverting is one service in one transaction (services.revert_article): the
        version's fields, topics and references come back together or not at all."""
        if not all(str(part).isascii() and str(part).isdigit() for part in (object_id, version_id)):
            raise Http404
        if request.method != "POST" or "_change_history" in request.POST:
            return super().history_form_view(request, object_id, version_id, extra_context)
        version = get_object_or_404(Article.history, id=object_id, history_id=version_id)
        article = version.instance
        article._state.adding = False
        if not self.has_change_history_permission(request, article) or self.revert_disabled(
            request, article
        ):
            raise PermissionDenied
        form = self.get_form(request, article)(request.POST, request.FILES, instance=article)
        if not form.is_valid():  # shown again with its errors, as simple-history does
            return super().history_form_view(request, object_id, version_id, extra_context)
        article = self.save_form(request, form, change=True)
        article._history_user = request.user
        services.revert_article(article=article, version=version, save_m2m=form.save_m2m)
        self.log_change(request, article, self.construct_change_message(request, form, []))
        return self.response_change(request, article)

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        services.save_article(article=obj)

    @admin.action(description="Publish the selected articles (now, or on their publish date)")
    def publish(self, request, queryset):
        count = services.publish_articles(articles=queryset)
        self.message_user(request, f"{count} article(s) published.", messages.SUCCESS)

    @admin.action(description="Unpublish the selected articles (back to draft)")
    def unpublish(self, request, queryset):
        count = services.unpublish_articles(articles=queryset)
        self.message_user(request, f"{count} article(s) taken off the site.", messages.SUCCESS)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["display_name", "credentials", "user"]
    search_fields = ["display_name"]


@admin.register(ArticleRedirect)
class ArticleRedirectAdmin(admin.ModelAdmin):
    list_display = ["old_slug", "article", "created_at"]
    search_fields = ["old_slug", "article__title"]
