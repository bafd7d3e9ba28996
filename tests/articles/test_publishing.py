"""Who sees what: drafts, scheduled and unpublished articles are invisible to the public."""

from datetime import timedelta
from xml.etree import ElementTree

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from articles.models import Article
from articles.services import publish_articles, unpublish_articles

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def public_places(client, article, topic):
    """Every public place an article can show up, and whether it shows up there."""
    title = article.title
    sitemap = ElementTree.fromstring(client.get("/sitemap.xml").content)
    locations = [loc.text for loc in sitemap.iter(f"{SITEMAP}loc")]
    rss = ElementTree.fromstring(client.get(reverse("articles:rss")).content)
    atom = ElementTree.fromstring(client.get(reverse("articles:atom")).content)
    return {
        "page": client.get(article.get_absolute_url()).status_code == 200,
        "list": title in client.get(reverse("articles:list")).content.decode(),
        "topic": title in client.get(topic.get_absolute_url()).content.decode(),
        "search": title in client.get(reverse("articles:list"), {"q": "zebra"}).content.decode(),
        "home": title in client.get("/").content.decode(),
        "rss": title in [item.findtext("title") for item in rss.iter("item")],
        "atom": title in [entry.findtext(f"{ATOM}title") for entry in atom.iter(f"{ATOM}entry")],
        "sitemap": any(loc.endswith(article.get_absolute_url()) for loc in locations),
        "related": title in client.get(related_host(article, topic)).content.decode(),
    }


def related_host(article, topic):
    host = Article.objects.exclude(pk=article.pk).get(slug="host")
    return host.get_absolute_url()


@pytest.fixture
def host(make_article, topic):
    return make_article(slug="host", title="Host article", topics=[topic])


@pytest.mark.parametrize(
    "state",
    [
        {"status": Article.Status.DRAFT},
        {"status": Article.Status.PUBLISHED, "published_at": timezone.now() + timedelta(days=2)},
    ],
    ids=["draft", "scheduled"],
)
def test_unpublished_articles_are_nowhere_for_the_public(
    client, clinic, make_article, topic, host, state
):
    hidden = make_article(title="Zebra stretches", body="zebra", topics=[topic], **state)
    assert not any(public_places(client, hidden, topic).values())


def test_a_published_article_is_everywhere(client, clinic, make_article, topic, host):
    live = make_article(title="Zebra stretches", body="zebra", topics=[topic])
    assert all(public_places(client, live, topic).values())


def test_a_scheduled_article_goes_live_by_itself_at_its_date(
    client, clinic, make_article, topic, host
):
    go_live = timezone.now() + timedelta(days=2)
    scheduled = make_article(
        title="Zebra stretches", body="zebra", topics=[topic], published_at=go_live
    )
    with time_machine.travel(go_live - timedelta(minutes=1)):
        assert client.get(scheduled.get_absolute_url()).status_code == 404
    with time_machine.travel(go_live + timedelta(minutes=1)):
        assert all(public_places(client, scheduled, topic).values())


def test_unpublishing_takes_an_article_off_every_public_place(
    client, clinic, make_article, topic, host
):
    article = make_article(title="Zebra stretches", body="zebra", topics=[topic])
    assert unpublish_articles(articles=Article.objects.filter(pk=article.pk)) == 1
    assert not any(public_places(client, article, topic).values())


def test_publishing_a_draft_without_a_date_puts_it_live_now(make_article):
    draft = make_article(status=Article.Status.DRAFT, published_at=None)
    assert publish_articles(articles=Article.objects.filter(pk=draft.pk)) == 1
    draft.refresh_from_db()
    assert draft.is_live()


def test_publishing_keeps_a_future_date_so_the_article_stays_scheduled(make_article):
    later = timezone.now() + timedelta(days=7)
    draft = make_article(status=Article.Status.DRAFT, published_at=later)
    publish_articles(articles=Article.objects.filter(pk=draft.pk))
    draft.refresh_from_db()
    assert draft.status == "published" and draft.published_at == later and not draft.is_live()


def test_staff_preview_a_draft_exactly_as_it_will_look(client, clinic, make_article, staff_user):
    draft = make_article(status=Article.Status.DRAFT, published_at=None, body="## Draft heading")
    assert client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(staff_user)
    response = client.get(draft.get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert "only staff can see it" in page and "<h2>Draft heading</h2>" in page
    assert response["X-Robots-Tag"] == "noindex"
    assert "no-store" in response["Cache-Control"]


def test_a_published_article_needs_a_publish_date(author):
    from django.core.exceptions import ValidationError

    from articles.services import save_article

    article = Article(title="T", slug="t", summary="s", body="b", author=author, status="published")
    with pytest.raises(ValidationError, match="publish date"):
        save_article(article=article)
