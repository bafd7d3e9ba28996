"""Article pages: content, SEO, redirects, search and bad input."""

from datetime import date
from xml.etree import ElementTree

import pytest
from django.db import connection
from django.urls import reverse

from articles.models import Article, ArticleRedirect, Reference, Topic
from articles.services import save_article
from tests.html import parse

pytestmark = pytest.mark.django_db

CALF = "/articles/tight-calf-muscles-low-back-pain/"


def test_the_calf_article_keeps_the_facts_of_the_clinics_page(client, seeded):
    page = client.get(CALF).content.decode()
    for fact in (
        "thoracolumbar paraspinal",
        "lumbar lordosis",
        "about 15% of low back pain",
        "TrP3",
        "sacroiliac joint",
        "elbow or forearm",
        "shorter stride",
        "Headaches and jaw pain",
    ):
        assert fact in page, fact
    body = page.split('<div class="article-body">', 1)[1].split("</div>", 1)[0]
    assert body.count("<li>") == 4 + 7  # what soleus trouble leads to; the seven factors
    assert "Janda V (1987)" in page and "Janda V, Frank C, Liebenson C (2007)" in page


def test_article_page_shows_byline_review_reading_time_and_call_to_book(client, seeded):
    page = client.get(CALF).content.decode()
    assert "By The clinic&#x27;s therapists" in page
    assert 'Last reviewed <time datetime="2026-11-24">November 24, 2026</time>' in page
    assert "min read" in page
    assert f'href="{reverse("booking:start")}">Book now</a>' in page
    assert 'aria-label="Breadcrumb"' in page


def test_references_are_numbered_and_markers_point_at_them(client, seeded):
    page = client.get(CALF).content.decode()
    assert '<li id="ref-1" value="1">' in page and '<li id="ref-2" value="2">' in page
    assert 'href="#ref-1"' in page and 'href="#ref-2"' in page


def test_article_jsonld_is_a_reviewed_cited_medical_web_page(client, seeded, settings):
    settings.SITE_URL = "https://clinic.example"
    (data,) = parse(client.get(CALF)).jsonld
    assert data["@type"] == "MedicalWebPage"
    assert data["url"] == f"https://clinic.example{CALF}"
    assert data["lastReviewed"] == "2026-11-24"
    assert [c["author"] for c in data["citation"]] == ["Janda V", "Janda V, Frank C, Liebenson C"]
    assert {t["name"] for t in data["about"]} >= {"Low back pain", "Calf and soleus"}
    assert data["publisher"]["name"] == "Porter Avenue Massage Clinic"
    assert data["publisher"]["@type"] == "HealthAndBeautyBusiness"
    crumbs = [item["name"] for item in data["breadcrumb"]["itemListElement"]]
    assert crumbs == ["Home", "Articles", data["name"]]


def test_article_head_has_unique_title_description_canonical_and_social_tags(
    client, seeded, settings
):
    settings.SITE_URL = "https://clinic.example"
    page = parse(client.get(CALF))
    assert page.title.startswith("Are Tight Calf Muscles the Hidden Cause")
    assert page.meta["description"].startswith("Tight calves can shift your posture")
    canonical = [link["href"] for link in page.links if link.get("rel") == "canonical"]
    assert canonical == [f"https://clinic.example{CALF}"]
    assert page.meta["og:type"] == "article" and page.meta["og:url"] == canonical[0]
    # No hero image: the clinic's card stands in, shown large.
    assert page.meta["og:image"] == "https://clinic.example/static/img/social-card.png"
    assert page.meta["twitter:card"] == "summary_large_image"
    feeds = {link.get("type") for link in page.links if link.get("rel") == "alternate"} - {None}
    assert feeds == {"application/rss+xml", "application/atom+xml"}
    assert parse(client.get(reverse("articles:list"))).title != page.title


def test_share_links_are_plain_links(client, seeded):
    page = client.get(CALF).content.decode()
    assert "facebook.com/sharer/sharer.php?u=" in page and "mailto:?subject=" in page
    assert "<script src" not in page


def test_related_articles_share_topics_and_exclude_the_article(client, clinic, make_article):
    back, calf, feet = (Topic.objects.create(name=n, slug=n) for n in ("back", "calf", "feet"))
    main = make_article(title="Main", topics=[back, calf])
    both = make_article(title="Shares two", topics=[back, calf])
    one = make_article(title="Shares one", topics=[calf, feet])
    make_article(title="Shares none", topics=[feet])
    related = list(Article.objects.related_to(main))
    assert related == [both, one]
    page = client.get(main.get_absolute_url()).content.decode()
    assert "Shares two" in page and "Shares none" not in page


def test_a_renamed_published_article_redirects_from_its_old_address(client, clinic, make_article):
    article = make_article(slug="old-name")
    article.slug = "new-name"
    save_article(article=article)
    response = client.get("/articles/old-name/")
    assert response.status_code == 301
    assert response["Location"] == "/articles/new-name/"
    article.slug = "newest-name"
    save_article(article=article)
    assert client.get("/articles/old-name/")["Location"] == "/articles/newest-name/"
    assert client.get("/articles/new-name/")["Location"] == "/articles/newest-name/"


def test_renaming_a_draft_leaves_no_redirect(make_article):
    draft = make_article(slug="draft-name", status=Article.Status.DRAFT, published_at=None)
    draft.slug = "better-name"
    save_article(article=draft)
    assert not ArticleRedirect.objects.exists()


def test_an_old_address_of_an_unpublished_article_is_404(client, clinic, make_article):
    article = make_article(slug="old-name")
    article.slug = "new-name"
    save_article(article=article)
    article.status = Article.Status.DRAFT
    save_article(article=article)
    assert client.get("/articles/old-name/").status_code == 404


def test_reusing_an_old_address_for_a_new_article_serves_the_new_article(
    client, clinic, make_article
):
    first = make_article(slug="calves")
    first.slug = "calves-2025"
    save_article(article=first)
    make_article(slug="calves", title="The new calves article")
    assert "The new calves article" in client.get("/articles/calves/").content.decode()


def test_feeds_list_live_articles_with_absolute_links(client, seeded, settings):
    settings.SITE_URL = "https://clinic.example"
    rss = ElementTree.fromstring(client.get(reverse("articles:rss")).content)
    (item,) = rss.iter("item")
    assert item.findtext("link") == f"https://clinic.example{CALF}"
    atom = ElementTree.fromstring(client.get(reverse("articles:atom")).content)
    ns = "{http://www.w3.org/2005/Atom}"
    (entry,) = atom.iter(f"{ns}entry")
    assert entry.find(f"{ns}link").get("href") == f"https://clinic.example{CALF}"


def test_sitemap_lists_pages_articles_and_topics_on_the_site_url(client, seeded, settings):
    settings.SITE_URL = "https://clinic.example"
    tree = ElementTree.fromstring(client.get("/sitemap.xml").content)
    locations = {loc.text for loc in tree.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert "https://clinic.example/" in locations
    assert "https://clinic.example/articles/" in locations
    assert f"https://clinic.example{CALF}" in locations
    assert "https://clinic.example/articles/topics/low-back-pain/" in locations


def test_topic_page_lists_its_articles(client, seeded):
    response = client.get("/articles/topics/trigger-points/")
    assert response.status_code == 200
    assert "Are Tight Calf Muscles" in response.content.decode()


def test_the_list_pages_newest_first(client, clinic, make_article):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    for day in range(12):
        make_article(title=f"Day {day:02d}", published_at=now - timedelta(days=day))
    first = client.get(reverse("articles:list")).content.decode()
    assert first.index("Day 00") < first.index("Day 09") and "Day 10" not in first
    second = client.get(reverse("articles:list"), {"page": 2}).content.decode()
    assert "Day 10" in second and "Day 11" in second and "Page 2 of 2" in second


def test_filter_by_topic_keeps_only_that_topic(client, clinic, make_article):
    back = Topic.objects.create(name="Back", slug="back")
    make_article(title="About backs", topics=[back])
    make_article(title="About feet")
    page = client.get(reverse("articles:list"), {"topic": "back"}).content.decode()
    assert "About backs" in page and "About feet" not in page


def test_search_finds_words_in_title_summary_and_body(client, clinic, make_article):
    make_article(title="Soleus trigger points", body="calf work")
    make_article(title="Neck pain", summary="On the soleus too", body="x")
    make_article(title="Shoulders", body="Nothing here about s-o-l-e-u-s")
    page = client.get(reverse("articles:list"), {"q": "soleus"}).content.decode()
    assert "Soleus trigger points" in page and "Neck pain" in page and "Shoulders" not in page
    assert "2 articles found" in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ranking is PostgreSQL's")
def test_search_ranks_title_matches_above_body_matches(clinic, make_article):
    body_only = make_article(title="Walking", body="Some words about the soleus muscle.")
    in_title = make_article(title="The soleus muscle", body="Calf.")
    make_article(title="Shoulders", body="Only the word muscle.")
    assert list(Article.objects.published().search("soleus")) == [in_title, body_only]
    assert list(Article.objects.published().search("soleus zebra")) == []


BAD_QUERIES = [
    ({"page": "abc"}, 404),
    ({"page": "99999"}, 404),
    ({"page": "-1"}, 404),
    ({"q": "x" * 10_000}, 400),
    ({"q": "bad\x00byte"}, 400),
    ({"topic": "no-such-topic"}, 400),
    ({"topic": "bad\x00slug"}, 400),
    ({"page": "1\x00"}, 404),
    ({"q": "𝔰𝔬𝔩𝔢𝔲𝔰 ☃ ' \" <script> -- ;DROP TABLE"}, 200),
    ({"q": "'\"!&|:*()"}, 200),
]


@pytest.mark.parametrize(("params", "status"), BAD_QUERIES)
def test_bad_list_input_gets_a_page_or_404_never_500(client, seeded, params, status):
    assert client.get(reverse("articles:list"), params).status_code == status


def test_a_too_long_search_says_why_and_keeps_what_was_typed(client, seeded):
    typed = "calf " * 60
    response = client.get(reverse("articles:list"), {"q": typed})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Please shorten your search to 200 characters." in page
    assert typed.strip() in page


@pytest.mark.parametrize(
    "path",
    [
        "/articles/no-such-article/",
        "/articles/%E2%98%83-snow/",
        "/articles/%00/",
        "/articles/calf%00/",
        "/articles/topics/none/",
        "/articles/topics/%00/",
        "/articles/" + "a" * 300 + "/",
    ],
)
def test_unknown_article_addresses_are_404(client, seeded, path):
    assert client.get(path).status_code == 404


def test_hero_image_has_responsive_sizes_and_alt_text(
    client, clinic, make_article, django_capture_on_commit_callbacks
):
    from io import BytesIO

    from django.core.exceptions import ValidationError
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (2000, 1000), "teal").save(buffer, "JPEG")
    upload = SimpleUploadedFile("calf.jpg", buffer.getvalue(), content_type="image/jpeg")
    with pytest.raises(ValidationError, match="Describe the image"):
        make_article(hero_image=upload)
    upload.seek(0)
    with django_capture_on_commit_callbacks(execute=True):  # the sizes are made after commit
        article = make_article(hero_image=upload, hero_alt="A therapist working on a calf")
    article.refresh_from_db()
    assert sorted(article.hero_renditions, key=int) == ["480", "960", "1600"]
    page = parse(client.get(article.get_absolute_url()))
    assert (
        'alt="A therapist working on a calf"'
        in client.get(article.get_absolute_url()).content.decode()
    )
    assert page.meta["twitter:card"] == "summary_large_image"
    image = client.get(page.meta["og:image"].replace("http://127.0.0.1:8000", ""))
    assert image.status_code == 200


def test_review_dates_must_be_in_order(author):
    from django.core.exceptions import ValidationError

    article = Article(
        title="T", slug="t", summary="s", body="b", author=author,
        last_reviewed=date(2026, 5, 1), next_review_due=date(2026, 1, 1),
    )  # fmt: skip
    with pytest.raises(ValidationError, match="next review"):
        save_article(article=article)


def add_references(article, count):
    start = article.references.count() + 1
    Reference.objects.bulk_create(
        Reference(article=article, position=p, authors="A", year=2000, title="T", source="S")
        for p in range(start, start + count)
    )


@pytest.mark.parametrize("url_name", ["list", "topic", "detail"])
def test_pages_run_a_fixed_number_of_queries(
    client, clinic, make_article, url_name, django_assert_max_num_queries, settings
):
    from django.test.utils import CaptureQueriesContext

    settings.PAGE_CACHE_SECONDS = 0  # the view's own queries, not a page cache hit

    topics = []

    def grow(articles, more_topics, references):
        """More articles, and more topics and references on every article."""
        new = [
            Topic.objects.create(name=f"T{len(topics)}-{i}", slug=f"t{len(topics)}-{i}")
            for i in range(more_topics)
        ]
        topics.extend(new)
        for _ in range(articles):
            make_article()
        for article in Article.objects.all():
            article.topics.add(*topics)
            add_references(article, references)

    def url():
        if url_name == "list":
            return reverse("articles:list")
        if url_name == "topic":
            return topics[0].get_absolute_url()
        return Article.objects.order_by("pk").first().get_absolute_url()

    grow(articles=2, more_topics=1, references=1)
    client.get(url())  # fill the clinic-profile cache
    with CaptureQueriesContext(connection) as few:
        assert client.get(url()).status_code == 200
    grow(articles=15, more_topics=8, references=8)
    assert Article.objects.order_by("pk").first().references.count() == 9
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url()).status_code == 200


def test_an_unknown_topic_is_reported_and_all_articles_are_shown(client, seeded):
    response = client.get(reverse("articles:list"), {"topic": "no-such-topic"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "That topic does not exist; showing all topics." in page
    assert "Are Tight Calf Muscles" in page


def test_topic_links_leave_out_topics_with_no_live_article(client, seeded, make_article):
    secret = Topic.objects.create(name="Secret plans", slug="secret-plans")
    make_article(status=Article.Status.DRAFT, published_at=None, topics=[secret])
    page = client.get(reverse("articles:list")).content.decode()
    assert "Trigger points" in page and "Secret plans" not in page


def test_a_draft_on_an_old_address_does_not_hide_the_redirect(client, clinic, make_article):
    live = make_article(slug="calves")
    live.slug = "calf-muscles"
    save_article(article=live)
    make_article(slug="calves", status=Article.Status.DRAFT, published_at=None)
    response = client.get("/articles/calves/")
    assert response.status_code == 301 and response["Location"] == "/articles/calf-muscles/"


@pytest.mark.parametrize(
    "path", ["/", "/articles/", CALF, "/articles/topics/low-back-pain/", "/healthz", "/robots.txt"]
)
def test_head_requests_are_answered_like_get(client, seeded, path):
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""


def test_a_draft_renamed_onto_an_old_address_keeps_the_redirect(client, clinic, make_article):
    live = make_article(slug="calves")
    live.slug = "calf-muscles"
    save_article(article=live)
    draft = make_article(slug="draft-slug", status=Article.Status.DRAFT, published_at=None)
    draft.slug = "calves"
    save_article(article=draft)
    response = client.get("/articles/calves/")
    assert response.status_code == 301 and response["Location"] == "/articles/calf-muscles/"
    from articles.services import publish_articles

    publish_articles(articles=Article.objects.filter(pk=draft.pk))
    assert client.get("/articles/calves/").status_code == 200  # now the draft's own address
