"""Uploaded images under /media/: served without metadata, a draft's only to staff, never a 500."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from articles.models import Article
from articles.services import publish_articles
from tests.articles.test_images import assert_no_metadata, gps_jpeg

pytestmark = pytest.mark.django_db


def fetch(client, url):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response.status_code, body


@pytest.fixture
def draft(make_article, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(
            status=Article.Status.DRAFT,
            published_at=None,
            hero_image=gps_jpeg(),
            hero_alt="A therapist working on a calf",
        )
    article.refresh_from_db()
    return article


def size_urls(article):
    return [size["url"] for size in article.hero_sizes]


def test_a_drafts_images_are_for_staff_until_it_is_published(client, staff_user, draft, clinic):
    assert len(size_urls(draft)) == 2  # 480 and its own 600 px width
    original = draft.hero_image.url
    for url in [*size_urls(draft), original]:
        assert fetch(client, url)[0] == 404, url

    client.force_login(staff_user)  # the admin's preview shows them
    for url in [*size_urls(draft), original]:
        status, body = fetch(client, url)
        assert status == 200, url
        assert_no_metadata(body, url)
        assert client.get(url)["Cache-Control"] == "private, no-store"
    client.logout()

    publish_articles(articles=Article.objects.filter(pk=draft.pk))
    for url in size_urls(draft):
        status, body = fetch(client, url)
        assert status == 200, url
        assert_no_metadata(body, url)
    # The page shows only the sizes: the stored original stays with staff.
    assert fetch(client, original)[0] == 404


def test_a_scheduled_articles_images_wait_for_its_publish_date(client, draft):
    draft.status = Article.Status.PUBLISHED
    draft.published_at = timezone.now() + timedelta(days=1)
    Article.objects.filter(pk=draft.pk).update(status=draft.status, published_at=draft.published_at)
    assert all(fetch(client, url)[0] == 404 for url in size_urls(draft))


def test_replaced_sizes_are_not_served(client, make_article, django_capture_on_commit_callbacks):
    from articles.services import save_article

    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(hero_image=gps_jpeg(), hero_alt="A calf")
    article.refresh_from_db()
    old = size_urls(article)
    assert all(fetch(client, url)[0] == 200 for url in old)
    article.hero_image = gps_jpeg("second.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        save_article(article=article)
    assert all(fetch(client, url)[0] == 404 for url in old)


def test_a_therapist_photo_is_stored_and_served_without_metadata(client, make_therapist):
    therapist = make_therapist(photo=gps_jpeg(), photo_alt="Maria smiling")
    therapist.refresh_from_db()
    assert "IMG_0001" not in therapist.photo.name
    with open(therapist.photo.path, "rb") as stored:
        assert_no_metadata(stored.read(), therapist.photo.name)
    status, body = fetch(client, therapist.photo.url)
    assert status == 200
    assert_no_metadata(body, therapist.photo.url)

    therapist.is_active = False  # no longer on the site: no longer served to the public
    therapist.save()
    assert fetch(client, therapist.photo.url)[0] == 404


@pytest.mark.parametrize(
    "path",
    [
        "/media/" + "a" * 256,
        "/media/articles/hero/" + "a" * 256 + ".jpg",
        "/media/articles/hero/sizes/1/" + "a" * 300 + ".webp",
        "/media/articles/hero/sizes/" + "9" * 40 + "/a-480.webp",
        "/media/" + "a/" * 200,
        "/media/../clinic/settings.py",
        "/media/articles/hero/../../clinic/settings.py",
        "/media/articles/hero/..%2F..%2Fclinic%2Fsettings.py",
        "/media/articles%2Fhero%2Fsizes%2F1%2Fa-480.webp",
        "/media/%2E%2E/%2E%2E/etc/passwd",
        "/media/articles/hero/a%00.jpg",
        "/media/%00",
        "/media/therapists/" + "é" * 300,
        "/media/",
        "/media/articles/hero/",
        "/media/articles/hero/sizes/1/nothing-480.webp",
        "/media/therapists/nobody.jpg",
    ],
)
def test_hostile_media_paths_are_a_clean_404(client, clinic, path, caplog):
    caplog.set_level(logging.DEBUG)
    assert client.get(path).status_code == 404
    assert "Traceback" not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
