"""Public article pages: the list with search and topic filter, topic pages, the article."""

from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from .forms import ArticleSearchForm
from .models import ORIGINAL_LANGUAGE, Article, ArticleRedirect, ArticleText, Topic, page_language
from .seo import article_jsonld

PER_PAGE = 10


def _page_of(request, queryset):
    """The requested page of `queryset`; a page that is not a number or out of range is a 404."""
    paginator = Paginator(queryset, PER_PAGE)
    try:
        return paginator.page(request.GET.get("page") or 1)
    except InvalidPage as exc:
        raise Http404("No such page of articles.") from exc


@require_safe
def article_list(request):
    form = ArticleSearchForm(request.GET or None)
    articles = Article.objects.published().for_cards()
    status = 200
    query = topic = None
    if form.is_bound:
        # A bad field is reported (400) and ignored; a good one still filters.
        if not form.is_valid():
            status = 400
        query, topic = form.cleaned_data.get("q"), form.cleaned_data.get("topic")
        if topic:
            articles = articles.filter(topics=topic)
        if query:
            articles = articles.search(query, page_language())
    page = _page_of(request, articles)
    return render(
        request,
        "articles/list.html",
        {
            "form": form,
            "page": page,
            "query": query,
            "topic": topic,
            "topics": Topic.objects.live(),
        },
        status=status,
    )


@require_safe
def topic_detail(request, slug):
    topic = get_object_or_404(Topic, slug=slug)
    page = _page_of(request, Article.objects.published().for_cards().filter(topics=topic))
    return render(
        request,
        "articles/topic.html",
        {"topic": topic, "page": page, "topics": Topic.objects.live()},
    )


@require_safe
def article_detail(request, slug):
    # The same slug in every language: /es/articles/<slug>/ is the Spanish page.
    article = (
        Article.objects.select_related("author", "reviewer", "recommended_service")
        .prefetch_related("topics", "references")
        .filter(slug=slug)
        .first()
    )
    preview = article is not None and not article.is_live()
    if article is None or (preview and not request.user.is_staff):
        # An old address of a live article answers with its new one, even when a draft
        # has since taken that slug.
        moved = ArticleRedirect.objects.select_related("article").filter(old_slug=slug).first()
        if moved and moved.article.is_live():
            return HttpResponsePermanentRedirect(moved.article.get_absolute_url())
        raise Http404("No such article.")
    text, draft_translation = _text_for(request, article)
    preview = preview or draft_translation
    response = render(
        request,
        "articles/detail.html",
        {
            "article": article,
            "text": text,
            "preview": preview,
            "draft_translation": draft_translation,
            "related": Article.objects.related_to(article).with_translation(),
            "jsonld": article_jsonld(article, text),
        },
    )
    if preview:
        # A staff preview must never be cached or indexed.
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex"
    return response


def _text_for(request, article):
    """The article's words for this page's language, and whether they are a draft version.

    Readers get the ready version in the page's language, else the English original; staff
    also see a draft version, as a preview, so they can check it before marking it ready.
    """
    language = page_language()
    if language == ORIGINAL_LANGUAGE or not request.user.is_staff:
        return article.text_in(language), False
    version = article.translations.filter(language=language).first()
    if version is None:
        return article.text_in(language), False
    return ArticleText.of(version, requested=language), (version.status != version.Status.READY)
