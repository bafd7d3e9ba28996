"""Articles in Spanish: the Spanish version where there is one, the English with a note where
there is not, drafts kept from the public, history and revert, search, feeds and the cache."""

from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from articles.content import load_article_content
from articles.models import Article, ArticleTranslation, Reference
from articles.rendering import cited_numbers
from articles.services import record_sources, save_article, save_translation
from clinic import pagecache
from tests.articles.test_admin import article_form, revert_form_data

pytestmark = pytest.mark.django_db

SLUG = "tight-calf-muscles-low-back-pain"
CALF_EN = f"/articles/{SLUG}/"
CALF_ES = f"/es/articles/{SLUG}/"
SPANISH_TITLE = "¿Sus pantorrillas tensas son la causa oculta de su dolor de espalda baja?"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class _Elements(HTMLParser):
    """Every element of a page with its attributes and its text (children's included)."""

    def __init__(self):
        super().__init__()
        self.elements, self._open = [], []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data


def elements(response, **attrs):
    """The elements of `response` whose attributes include `attrs` (class_ is a class)."""
    parser = _Elements()
    parser.feed(response.content.decode())
    tag = attrs.pop("tag", None)
    wanted = {key.rstrip("_"): value for key, value in attrs.items()}

    def matches(element):
        if tag is not None and element["tag"] != tag:
            return False
        for key, value in wanted.items():
            found = element["attrs"].get(key) or ""
            if key == "class" and value not in found.split() or key != "class" and found != value:
                return False
        return True

    return [element for element in parser.elements if matches(element)]


def one(response, **attrs):
    (element,) = elements(response, **attrs)
    return element


def spanish(article, **fields):
    values = {
        "article": article,
        "language": "es",
        "title": f"En español: {article.title}",
        "summary": "Resumen en español.",
        "body": "Texto en español sobre las pantorrillas [@1].",
        "status": ArticleTranslation.Status.READY,
    }
    values.update(fields)
    return save_translation(translation=ArticleTranslation(**values))


def test_the_spanish_page_shows_the_spanish_version_marked_as_spanish(client, seeded):
    response = client.get(CALF_ES)
    assert response.status_code == 200
    title = one(response, id="article-title")
    assert title["text"] == SPANISH_TITLE and title["attrs"]["lang"] == "es"
    assert one(response, class_="lead")["attrs"]["lang"] == "es"
    body = one(response, class_="article-text")
    assert body["attrs"]["lang"] == "es"
    assert "paravertebrales toracolumbares" in body["text"]
    assert "cerca del 15% del dolor de espalda baja" in body["text"]
    assert not elements(response, class_="fallback-note")
    meta = one(response, class_="article-meta")["text"]
    assert "noviembre" in meta and "2026" in meta  # the date in Spanish
    assert one(response, tag="time", datetime="2026-11-24")["text"].count("noviembre") == 1


def test_the_calf_article_in_spanish_keeps_the_facts_references_and_citation_links(client, seeded):
    english, spanish_page = client.get(CALF_EN), client.get(CALF_ES)
    references = [
        [(li["attrs"]["id"], li["text"]) for li in elements(page, tag="li") if "id" in li["attrs"]]
        for page in (english, spanish_page)
    ]
    assert references[0] == references[1]
    assert [ref_id for ref_id, _text in references[1]] == ["ref-1", "ref-2"]
    listed = " ".join(text for _id, text in references[1])
    assert "Janda V (1987)" in listed
    assert "Janda V, Frank C, Liebenson C (2007)" in listed
    version = Article.objects.get(slug=SLUG).translations.get(language="es")
    assert cited_numbers(version.body) == {1, 2}
    links = {a["attrs"]["href"] for a in elements(spanish_page, class_="cite-link")}
    assert links == {"#ref-1", "#ref-2"}
    body = one(spanish_page, class_="article-body")
    items = [e for e in elements(spanish_page) if e["tag"] == "li"]
    listed = [li for li in items if li["text"] in body["text"]]
    assert len(listed) == 4 + 7  # what soleus trouble leads to; the seven habits
    for fact in ("TrP3", "sacroilíaca", "codo o el antebrazo", "tacón alto", "acelerador"):
        assert fact in body["text"], fact


def test_an_article_without_a_spanish_version_shows_in_english_with_a_note(
    client, clinic, make_article
):
    article = make_article(title="Hamstrings and your back", slug="hamstrings")
    response = client.get(f"/es/articles/{article.slug}/")
    assert response.status_code == 200
    assert one(response, class_="fallback-note")
    title = one(response, id="article-title")
    assert title["text"] == "Hamstrings and your back" and title["attrs"]["lang"] == "en"
    assert one(response, class_="article-text")["attrs"]["lang"] == "en"
    assert one(response, tag="html")["attrs"]["lang"].startswith("es")


def test_the_spanish_list_marks_articles_that_are_only_in_english(client, seeded, make_article):
    make_article(title="Hamstrings and your back")
    response = client.get("/es/articles/")
    cards = elements(response, class_="article-card")
    assert len(cards) == 2
    by_title = {card["text"].strip().splitlines()[0].strip(): card for card in cards}
    assert "En inglés" not in by_title[SPANISH_TITLE]["text"]
    english_only = by_title["Hamstrings and your back"]
    badges = [e for e in elements(response, class_="lang-badge")]
    assert len(badges) == 1 and badges[0]["text"] in english_only["text"]
    titles = {a["text"]: a["attrs"].get("lang") for a in elements(response) if a["tag"] == "a"}
    assert titles[SPANISH_TITLE] == "es" and titles["Hamstrings and your back"] == "en"
    # The English list shows no badge at all.
    assert not elements(client.get("/articles/"), class_="lang-badge")


def test_a_draft_spanish_version_is_not_public_but_staff_preview_it(
    client, clinic, make_article, staff_user
):
    article = make_article(title="Hamstrings and your back")
    spanish(article, title="Isquiotibiales", status=ArticleTranslation.Status.DRAFT)
    url = f"/es/articles/{article.slug}/"
    public = client.get(url)
    assert one(public, id="article-title")["text"] == "Hamstrings and your back"
    assert one(public, class_="fallback-note")
    assert "Isquiotibiales" not in public.content.decode()
    assert "Isquiotibiales" not in client.get("/es/articles/").content.decode()
    searched = client.get("/es/articles/", {"q": "Isquiotibiales"})
    assert elements(searched, class_="card-title") == []
    client.force_login(staff_user)
    preview = client.get(url)
    assert one(preview, id="article-title")["text"] == "Isquiotibiales"
    assert one(preview, class_="preview-banner")
    assert "no-store" in preview["Cache-Control"]


def test_a_ready_spanish_version_of_a_draft_article_stays_hidden(client, clinic, make_article):
    article = make_article(status=Article.Status.DRAFT, published_at=None)
    spanish(article)
    assert client.get(f"/es/articles/{article.slug}/").status_code == 404
    assert article.title not in client.get("/es/articles/").content.decode()


def test_search_in_spanish_reads_the_spanish_text_and_english_where_there_is_none(
    client, seeded, make_article
):
    make_article(title="Hamstrings and your back", body="Tight hamstrings tug the pelvis.")
    found = client.get("/es/articles/", {"q": "pantorrillas sóleo"})
    assert [c["text"] for c in elements(found, class_="card-title")] == [SPANISH_TITLE]
    english_only = client.get("/es/articles/", {"q": "hamstrings"})
    assert [c["text"] for c in elements(english_only, class_="card-title")] == [
        "Hamstrings and your back"
    ]
    # An article with a Spanish version is searched in Spanish under /es/.
    assert not elements(client.get("/es/articles/", {"q": "soleus"}), class_="card-title")


def test_the_spanish_feed_lists_spanish_titles_where_there_are_some(client, seeded, make_article):
    make_article(title="Hamstrings and your back")
    feed = ElementTree.fromstring(client.get("/es/articles/feed/rss/").content)
    titles = [item.findtext("title") for item in feed.iter("item")]
    assert set(titles) == {SPANISH_TITLE, "Hamstrings and your back"}
    english = ElementTree.fromstring(client.get("/articles/feed/rss/").content)
    assert SPANISH_TITLE not in [item.findtext("title") for item in english.iter("item")]


def test_saving_a_spanish_version_retires_cached_pages(client, seeded, settings):
    settings.PAGE_CACHE_SECONDS = 300
    before = cache.get(pagecache.VERSION_KEY)
    version = Article.objects.get(slug=SLUG).translations.get()
    version.title = "Pantorrillas tensas y espalda baja"
    save_translation(translation=version)
    assert cache.get(pagecache.VERSION_KEY) != before
    assert "Pantorrillas tensas y espalda baja" in client.get(CALF_ES).content.decode()


def test_loading_the_content_again_keeps_staff_edits_and_deletions(seeded):
    article = Article.objects.get(slug=SLUG)
    version = article.translations.get()
    version.title = "Título de la clínica"
    save_translation(translation=version)
    load_article_content()
    assert article.translations.get().title == "Título de la clínica"
    # Staff delete it in the admin: a new version of the article, without it.
    version.delete()
    save_article(article=article)
    record_sources(article=article)
    load_article_content()
    assert not article.translations.exists()


@pytest.mark.parametrize("url", ["/es/articles/", "detail"])
def test_spanish_pages_run_a_fixed_number_of_queries(
    client, clinic, make_article, url, django_assert_max_num_queries, settings
):
    settings.PAGE_CACHE_SECONDS = 0  # the view's own queries, not a page cache hit
    first = make_article()
    spanish(first)
    make_article()
    path = url if url != "detail" else f"/es/articles/{first.slug}/"
    client.get(path)  # fill the clinic-profile cache
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    for n in range(12):
        article = make_article()
        if n % 2:
            spanish(article)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(path).status_code == 200


@pytest.fixture
def staff(client, staff_user, clinic):
    client.force_login(staff_user)
    return client


def spanish_inline(**fields):
    data = {
        "translations-TOTAL_FORMS": "1",
        "translations-INITIAL_FORMS": "0",
        "translations-0-language": "es",
        "translations-0-status": "ready",
        "translations-0-title": "Isquiotibiales y su espalda",
        "translations-0-summary": "Por qué los isquiotibiales tensos jalan la pelvis.",
        "translations-0-body": "Los isquiotibiales jalan la pelvis [@1].",
    }
    data.update({f"translations-0-{key}": value for key, value in fields.items()})
    return data


def test_staff_write_the_spanish_version_in_the_admin_and_revert_brings_it_back(
    staff, author, topic
):
    add = reverse("admin:articles_article_add")
    response = staff.post(add, {**article_form(author, topic), **spanish_inline()})
    assert response.status_code == 302
    article = Article.objects.get()
    version = article.translations.get()
    assert 'href="#ref-1"' in version.body_html
    assert one(staff.get(f"/es/articles/{article.slug}/"), id="article-title")["text"] == (
        "Isquiotibiales y su espalda"
    )
    change = reverse("admin:articles_article_change", args=[article.pk])
    second = {
        **article_form(author, topic, title="Second title"),
        **spanish_inline(id=version.pk, article=article.pk, title="Segundo título"),
        "translations-INITIAL_FORMS": "1",
        "references-INITIAL_FORMS": "1",
        "references-0-id": article.references.get().pk,
        "references-0-article": article.pk,
    }
    assert staff.post(change, second).status_code == 302
    assert article.translations.get().title == "Segundo título"
    assert article.history.count() == 2

    first = article.history.earliest()
    revert = reverse("admin:articles_article_simple_history", args=[article.pk, first.pk])
    assert staff.post(revert, revert_form_data(staff, revert)).status_code == 302
    article.refresh_from_db()
    assert article.title == "Hamstrings and your back"
    assert article.translations.get().title == "Isquiotibiales y su espalda"
    assert article.history.count() == 3


def test_the_admin_refuses_a_spanish_citation_with_no_such_reference(staff, author, topic):
    data = {**article_form(author, topic), **spanish_inline(body="Ver [@1] y [@3].")}
    response = staff.post(reverse("admin:articles_article_add"), data)
    assert response.status_code == 200
    assert "[@3]" in response.content.decode()
    assert not Article.objects.exists()
    assert not Reference.objects.exists()
