"""Staff run articles in the admin: write, publish, review, restore an earlier version."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from articles.models import Article, ArticleRedirect

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user, clinic):
    client.force_login(staff_user)
    return client


def article_form(author, topic, **overrides):
    # Yesterday at noon: never inside the repeated hour of a DST change.
    when = timezone.localtime().replace(hour=12, minute=0, second=0) - timedelta(days=1)
    data = {
        "title": "Hamstrings and your back",
        "slug": "hamstrings-and-your-back",
        "summary": "Why tight hamstrings tug at the pelvis.",
        "body": "Hamstrings pull on the pelvis [@1].",
        "hero_alt": "",
        "author": author.pk,
        "topics": [topic.pk],
        "reviewer": "",
        "last_reviewed": "",
        "next_review_due": "",
        "status": "published",
        "published_at_0": when.strftime("%Y-%m-%d"),
        "published_at_1": when.strftime("%H:%M:%S"),
        "references-TOTAL_FORMS": "1",
        "references-INITIAL_FORMS": "0",
        "references-MIN_NUM_FORMS": "0",
        "references-MAX_NUM_FORMS": "1000",
        "references-0-position": "1",
        "references-0-year": "2007",
        "references-0-authors": "Janda V, Frank C, Liebenson C",
        "references-0-title": "Evaluation of muscular imbalance",
        "references-0-source": "Rehabilitation of the Spine",
        "references-0-doi": "",
        "references-0-url": "",
        "translations-TOTAL_FORMS": "0",
        "translations-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_staff_write_and_publish_an_article_with_references(staff, author, topic):
    response = staff.post(reverse("admin:articles_article_add"), article_form(author, topic))
    assert response.status_code == 302, response.context["adminform"].form.errors
    article = Article.objects.get(slug="hamstrings-and-your-back")
    assert article.references.get().position == 1
    assert 'href="#ref-1"' in article.body_html
    page = staff.get(article.get_absolute_url()).content.decode()
    assert "Evaluation of muscular imbalance" in page


def test_hostile_admin_input_is_refused_with_messages_and_kept(staff, author, topic):
    data = article_form(
        author,
        topic,
        slug="not a slug <script>",
        title="x" * 500,
        status="published",
        published_at_0="",
        published_at_1="",
        **{"references-0-year": "nineteen"},
    )
    response = staff.post(reverse("admin:articles_article_add"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter a valid “slug”" in page
    assert "Ensure this value has at most 140 characters" in page
    assert "Enter a whole number." in page
    assert "Hamstrings pull on the pelvis [@1]." in page  # what staff typed is still there
    assert not Article.objects.exists()


def test_renaming_in_the_admin_keeps_the_old_address(staff, author, topic):
    staff.post(reverse("admin:articles_article_add"), article_form(author, topic))
    article = Article.objects.get()
    data = article_form(author, topic, slug="hamstrings")
    data.update(
        {
            "references-INITIAL_FORMS": "1",
            "references-0-id": article.references.get().pk,
            "references-0-article": article.pk,
        }
    )
    response = staff.post(reverse("admin:articles_article_change", args=[article.pk]), data)
    assert response.status_code == 302
    assert ArticleRedirect.objects.get().old_slug == "hamstrings-and-your-back"
    assert staff.get("/articles/hamstrings-and-your-back/")["Location"] == "/articles/hamstrings/"


def test_publish_and_unpublish_actions(staff, make_article, client):
    draft = make_article(status=Article.Status.DRAFT, published_at=None)
    changelist = reverse("admin:articles_article_changelist")
    staff.post(changelist, {"action": "publish", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.is_live()
    staff.post(changelist, {"action": "unpublish", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_changelist_shows_status_topics_reviewer_and_finds_overdue_reviews(
    staff, make_article, topic
):
    make_article(
        title="Overdue one", next_review_due=date.today() - timedelta(days=1), topics=[topic]
    )
    make_article(title="Fresh one", next_review_due=date.today() + timedelta(days=90))
    changelist = reverse("admin:articles_article_changelist")
    page = staff.get(changelist).content.decode()
    assert "Overdue one" in page and "Low back pain" in page and "Published" in page
    overdue = staff.get(changelist, {"review": "overdue"}).content.decode()
    assert "Overdue one" in overdue and "Fresh one" not in overdue
    assert staff.get(changelist, {"q": "Overdue"}).status_code == 200


def revert_form_data(staff, revert_url):
    """What the admin's revert page would submit: the old version's fields as shown."""
    form = staff.get(revert_url).context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if name == "published_at":
            local = timezone.localtime(value)
            data["published_at_0"], data["published_at_1"] = (
                f"{local:%Y-%m-%d}",
                f"{local:%H:%M:%S}",
            )
        elif name == "topics":
            data["topics"] = [getattr(v, "pk", v) for v in value or []]
        else:
            data[name] = "" if value is None else value
    data["hero_image"] = ""
    return data


def test_every_save_keeps_a_version_staff_can_restore_with_its_sources(staff, author, topic):
    from articles.models import Topic

    add = reverse("admin:articles_article_add")
    assert staff.post(add, article_form(author, topic, title="First title")).status_code == 302
    article = Article.objects.get()
    feet = Topic.objects.create(name="Feet", slug="feet")
    second = article_form(author, feet, title="Second title", body="Second body")
    second.update(
        {
            "references-INITIAL_FORMS": "1",
            "references-0-id": article.references.get().pk,
            "references-0-article": article.pk,
            "references-0-DELETE": "on",
        }
    )
    change = reverse("admin:articles_article_change", args=[article.pk])
    assert staff.post(change, second).status_code == 302
    article.refresh_from_db()
    assert article.title == "Second title" and not article.references.exists()
    assert article.history.count() == 2
    assert (
        "First title"
        in staff.get(reverse("admin:articles_article_history", args=[article.pk])).content.decode()
    )

    first = article.history.earliest()
    revert = reverse("admin:articles_article_simple_history", args=[article.pk, first.history_id])
    assert staff.post(revert, revert_form_data(staff, revert)).status_code == 302
    article.refresh_from_db()
    assert (article.title, article.body) == ("First title", "Hamstrings pull on the pelvis [@1].")
    assert 'href="#ref-1"' in article.body_html
    assert [r.title for r in article.references.all()] == ["Evaluation of muscular imbalance"]
    assert list(article.topics.all()) == [topic]
    assert article.history.count() == 3
    page = staff.get(article.get_absolute_url()).content.decode()
    assert "Evaluation of muscular imbalance" in page


def test_admin_pages_load(staff, seeded):
    for name in (
        "articles_topic",
        "articles_author",
        "articles_articleredirect",
        "clinic_outgoingemail",
    ):
        assert staff.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert staff.get(reverse("admin:clinic_clinicprofile_change", args=[1])).status_code == 200


def test_a_citation_without_its_reference_is_refused(staff, author, topic):
    data = article_form(author, topic, body="Cited twice [@1] and [@3].")
    response = staff.post(reverse("admin:articles_article_add"), data)
    assert response.status_code == 200
    assert "The body cites [@3] but the list has no such reference." in response.content.decode()
    assert not Article.objects.exists()


def test_two_references_with_one_number_are_refused(staff, author, topic):
    data = article_form(author, topic)
    data.update(
        {
            "references-TOTAL_FORMS": "2",
            "references-1-position": "1",
            "references-1-year": "1987",
            "references-1-authors": "Janda V",
            "references-1-title": "Muscles and motor control in low back pain",
            "references-1-source": "Physical Therapy of the Low Back",
            "references-1-doi": "",
            "references-1-url": "",
        }
    )
    response = staff.post(reverse("admin:articles_article_add"), data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for position" in response.content.decode()
    assert not Article.objects.exists()
