"""Print how long the public pages take and how many SQL queries they run, as content grows.

    make bench            (SQLite in a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench make bench

Figures, not a test: nothing here passes or fails.
"""

import statistics
import time

import _django  # noqa: E402  (bench/ is on sys.path when a script runs)

_django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

REPEAT = 30


def grow(total):
    """Add published articles with topics and references until there are `total`."""
    from articles.models import Article, Reference, Topic
    from articles.services import save_article

    author = Article.objects.first().author
    topics = list(Topic.objects.all())
    body = ("Calf muscles, posture and the low back. " * 150) + "[@1]"
    for n in range(Article.objects.count(), total):
        article = save_article(
            article=Article(
                title=f"Bench article {n}",
                slug=f"bench-article-{n}",
                summary="A benchmark article.",
                body=body,
                author=author,
                status=Article.Status.PUBLISHED,
                published_at=timezone.now() - timezone.timedelta(minutes=n),
            )
        )
        article.topics.set(topics)
        Reference.objects.bulk_create(
            Reference(article=article, position=p, authors="A", year=2000, title="T", source="S")
            for p in range(1, 6)
        )


def measure(client, path):
    client.get(path)  # warm the clinic-profile cache
    reset_queries()  # a full query log (its deque is capped) would hide new queries
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    count = len(queries)
    assert response.status_code == 200, (path, response.status_code)
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    return count, statistics.median(times), max(times)


def main():
    from django.test.utils import override_settings

    # Static files from their source folders: a benchmark has no collectstatic manifest.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    # Keep one connection across requests so its query log can be read.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    call_command("migrate", verbosity=0)
    call_command("load_content", verbosity=0)
    client = Client(HTTP_HOST="127.0.0.1")
    paths = [
        "/",
        "/articles/",
        "/articles/?q=calf+posture",
        "/articles/topics/low-back-pain/",
        "/articles/tight-calf-muscles-low-back-pain/",
        "/articles/feed/rss/",
        "/sitemap.xml",
    ]
    print(f"database: {connection.vendor}; {REPEAT} requests a page (Django test client)")
    print(f"{'articles':>8}  {'page':<45} {'queries':>7} {'median ms':>10} {'max ms':>8}")
    for total in (1, 50, 200):
        grow(total)
        for path in paths:
            count, median, worst = measure(client, path)
            print(f"{total:>8}  {path:<45} {count:>7} {median:>10.1f} {worst:>8.1f}")


if __name__ == "__main__":
    main()
