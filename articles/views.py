"""Public article pages: the list with search and topic filter, topic pages, the article."""

from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from .forms import ArticleSearchForm
from .models import Article, ArticleRedirect, Topic
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
            articles = articles.search(query)
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
    response = render(
        request,
        "articles/detail.html",
        {
            "article": article,
            "preview": preview,
            "related": Article.objects.related_to(article),
            "jsonld": article_jsonld(article),
        },
    )
    if preview:
        # A staff preview must never be cached or indexed.
        response["Cache-Control"] = "private, no-store"
        response["X-Robots-Tag"] = "noindex"
    return response
