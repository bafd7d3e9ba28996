"""Reverting an article to an earlier version: all of it, or nothing."""

import pytest
from django.urls import reverse

from articles import services
from articles.models import Article, Topic
from tests.articles.test_admin import article_form, revert_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user, clinic):
    client.force_login(staff_user)
    return client


@pytest.fixture
def two_versions(staff, author, topic):
    """An article saved twice in the admin: first with `topic` and a reference, then not."""
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
    return article


def state(article):
    article.refresh_from_db()
    return {
        "fields": (article.title, article.body, article.body_html, article.updated_at),
        "topics": list(article.topics.values_list("slug", flat=True)),
        "references": list(article.references.values_list("title", flat=True)),
        "versions": article.history.count(),
        "snapshot": article.sources_snapshot,
    }


@pytest.mark.parametrize("failing_step", ["restore_sources", "record_sources"])
def test_a_revert_that_fails_part_way_leaves_the_article_as_it_was(
    staff, two_versions, monkeypatch, failing_step
):
    before = state(two_versions)
    assert before["fields"][0] == "Second title" and before["topics"] == ["feet"]

    def fail(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, failing_step, fail)
    first = two_versions.history.earliest()
    revert = reverse("admin:articles_article_simple_history", args=[two_versions.pk, first.pk])
    with pytest.raises(RuntimeError):
        staff.post(revert, revert_form_data(staff, revert))
    assert state(two_versions) == before


def test_a_revert_brings_back_fields_topics_and_references_together(staff, two_versions):
    first = two_versions.history.earliest()
    revert = reverse("admin:articles_article_simple_history", args=[two_versions.pk, first.pk])
    assert staff.post(revert, revert_form_data(staff, revert)).status_code == 302
    after = state(two_versions)
    assert after["fields"][0] == "First title"
    assert after["topics"] == ["low-back-pain"]
    assert after["references"] == ["Evaluation of muscular imbalance"]
    assert after["versions"] == 3


@pytest.mark.parametrize("version", ["x", "1x", "²", "99999999999999999999999"])
def test_a_malformed_version_address_is_a_404(staff, two_versions, version):
    url = reverse("admin:articles_article_simple_history", args=[two_versions.pk, version])
    assert staff.get(url).status_code == 404
    assert staff.post(url, {}).status_code == 404
