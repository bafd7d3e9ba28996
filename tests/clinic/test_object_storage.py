"""Uploads on S3-compatible object storage: two app servers, one bucket.

The bucket is a real S3-compatible server the suite starts itself (moto's standalone
server, on a free loopback port). "Two app servers" are two sets of settings in this
process, each with its own MEDIA_ROOT, as two machines have: what one stores through the
admin, the other shows, while drafts and originals stay with staff.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.http import http_date

from articles.models import Article
from articles.services import publish_articles
from tests.articles.test_images import assert_no_metadata, gps_jpeg
from tests.clinic.test_serve import settings_of

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"AWS_ACCESS_KEY_ID": "clinic-test", "AWS_SECRET_ACCESS_KEY": "clinic-test-secret"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own server)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """moto's S3-compatible server, started on a free loopback port for this session."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited at start; see {log.name}")
        try:
            http_get(f"{endpoint}/moto-api/")
            break
        except OSError:
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                raise RuntimeError(f"moto's server did not answer within 30 s; see {log.name}")
            time.sleep(0.2)
    yield endpoint
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(10)
    log.close()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A new private bucket, and the settings MEDIA_S3_BUCKET and MEDIA_S3_ENDPOINT_URL give."""
    import boto3

    for name, value in KEYS.items():  # read by boto3, as in production
        monkeypatch.setenv(name, value)
    name = f"clinic-media-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    configured = settings_of(
        MEDIA_S3_BUCKET=name, MEDIA_S3_ENDPOINT_URL=s3_endpoint, MEDIA_S3_REGION="us-east-1"
    )
    assert configured.returncode == 0, configured.stderr
    settings.STORAGES = {**settings.STORAGES, "default": storage_settings(configured)}
    settings.MEDIA_S3_BUCKET = name
    return client, name


def storage_settings(result):
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])[0]


def upload_draft_in_the_admin(client, author):
    response = client.post(
        reverse("admin:articles_article_add"),
        {
            "title": "Calves and the low back",
            "slug": "calves-and-the-low-back",
            "summary": "Why tight calves can make your back ache.",
            "body": "Body.",
            "author": author.pk,
            "status": "draft",
            "hero_alt": "A therapist working on a calf",
            "hero_image": gps_jpeg(size=(1200, 600)),
            **{
                f"{inline}-{count}": "0"
                for inline in ("references", "translations")
                for count in ("TOTAL_FORMS", "INITIAL_FORMS")
            },
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Article.objects.get(slug="calves-and-the-low-back")


def files_under(folder):
    return [path for path in Path(folder).rglob("*") if path.is_file()]


def body(response):
    return b"".join(response.streaming_content)


def test_no_bucket_keeps_uploads_in_media_root():
    result = settings_of()
    assert result.returncode == 0, result.stderr
    assert storage_settings(result)["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_a_hero_uploaded_in_one_servers_admin_is_shown_by_another(
    bucket, settings, tmp_path, staff_user, author, clinic, django_capture_on_commit_callbacks
):
    s3, name = bucket
    # Server A: its own disk. Staff upload a draft's hero in its admin.
    settings.MEDIA_ROOT = str(tmp_path / "server-a")
    staff_a = Client()
    staff_a.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        article = upload_draft_in_the_admin(staff_a, author)
    article.refresh_from_db()
    sizes = [size["url"] for size in article.hero_sizes]
    original = article.hero_image.url
    assert len(sizes) == 2  # 480 px and its own width (600 px, upright)
    assert all(url.startswith("/media/articles/hero/sizes/") for url in sizes)
    assert original.startswith("/media/articles/hero/")
    stored = {item["Key"] for item in s3.list_objects_v2(Bucket=name)["Contents"]}
    assert stored == {url.removeprefix("/media/") for url in [*sizes, original]}
    for key in stored:  # nothing in the bucket is readable by just anyone
        grants = s3.get_object_acl(Bucket=name, Key=key)["Grants"]
        assert not any("AllUsers" in str(grant["Grantee"]) for grant in grants), key

    # Server B: another disk, the same bucket and database.
    settings.MEDIA_ROOT = str(tmp_path / "server-b")
    public_b, staff_b = Client(), Client()
    staff_b.force_login(staff_user)
    for url in [*sizes, original]:  # a draft: nothing for the public...
        assert public_b.get(url).status_code == 404, url
    for url in [*sizes, original]:  # ...everything for staff, never cached
        response = staff_b.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "private, no-store"
        assert_no_metadata(body(response), url)

    publish_articles(articles=Article.objects.filter(pk=article.pk))
    page = public_b.get(article.get_absolute_url())
    assert page.status_code == 200
    shown = re.findall(r"/media/articles/hero/sizes/[^\s\"]+\.webp", page.content.decode())
    assert set(shown) == set(sizes)
    for url in sizes:
        response = public_b.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "image/webp"
        assert response["Cache-Control"] == "public, max-age=3600"
        key = url.removeprefix("/media/")
        assert body(response) == s3.get_object(Bucket=name, Key=key)["Body"].read()
    assert public_b.get(original).status_code == 404  # the original stays with staff

    # Neither server kept a file of its own: the bucket is the only copy.
    assert files_under(tmp_path / "server-a") == files_under(tmp_path / "server-b") == []


def test_a_public_image_the_browser_has_is_not_sent_again(
    bucket, staff_user, author, clinic, client, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        article = upload_draft_in_the_admin(client, author)
    publish_articles(articles=Article.objects.filter(pk=article.pk))
    article.refresh_from_db()
    url = article.hero_sizes[0]["url"]
    client.logout()
    first = client.get(url)
    assert first.status_code == 200 and first["Last-Modified"]
    again = client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304
    older = http_date((datetime.now() - timedelta(days=365)).timestamp())
    assert client.get(url, HTTP_IF_MODIFIED_SINCE=older).status_code == 200

    s3, name = bucket  # a file gone from the bucket (deleted by hand) is a 404, not a 500
    s3.delete_object(Bucket=name, Key=url.removeprefix("/media/"))
    assert client.get(url).status_code == 404


def test_public_images_can_come_straight_from_the_bucket_by_signed_address(
    bucket, settings, staff_user, author, clinic, client, django_capture_on_commit_callbacks
):
    s3, name = bucket
    settings.MEDIA_S3_REDIRECT_PUBLIC = True
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        article = upload_draft_in_the_admin(client, author)
    article.refresh_from_db()
    url = article.hero_sizes[0]["url"]
    assert client.get(url).status_code == 200  # staff, a draft: through the access check
    client.logout()
    assert client.get(url).status_code == 404  # the public, a draft: nothing, not a redirect

    publish_articles(articles=Article.objects.filter(pk=article.pk))
    response = client.get(url)
    assert response.status_code == 302
    signed = response["Location"]
    assert signed.startswith(settings.STORAGES["default"]["OPTIONS"]["endpoint_url"])
    assert re.search(r"[?&](X-Amz-Signature|Signature)=", signed), signed
    key = url.removeprefix("/media/")
    assert http_get(signed) == (200, s3.get_object(Bucket=name, Key=key)["Body"].read())
    assert client.get(article.hero_image.url).status_code == 404  # originals: never


def test_the_signed_address_host_is_allowed_to_show_images():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; "
            "print(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src'])",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "MEDIA_S3_BUCKET": "clinic-media",
            "MEDIA_S3_ENDPOINT_URL": "https://s3.example.net",
            "MEDIA_S3_REDIRECT_PUBLIC": "true",
            "DEBUG": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "'https://s3.example.net'" in result.stdout.strip().splitlines()[-1], result.stderr
