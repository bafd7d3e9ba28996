"""No page runs more queries as the clinic grows: every public page, every booking step.

Each page is fetched once to warm the clinic-profile cache, then its queries are counted;
more articles, topics, references, therapists and appointments are added, and the count
must not move. The page cache is off here: it is the views' own queries that must not grow.
"""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import Article, Reference, Topic
from booking.links import manage_token
from booking.models import Appointment, Service, Therapist
from booking.services import book_appointment

pytestmark = pytest.mark.django_db

SERVICE = "massage-60"


# A Tuesday morning, fixed: which times are free (and so which pages the test visits and
# which of them the grown clinic's bookings take) must not depend on the day the suite runs.
FIXED_INSTANT = datetime(2027, 3, 2, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


@pytest.fixture(autouse=True)
def _fixed_instant():
    with time_machine.travel(FIXED_INSTANT, tick=False):
        yield


@pytest.fixture(autouse=True)
def _no_page_cache(_fixed_instant, settings, seeded):
    settings.PAGE_CACHE_SECONDS = 0


def count_queries(client, path):
    assert client.get(path).status_code == 200, path
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(queries)


def booking_paths(client, appointment):
    day = f"/book/{SERVICE}/any/"
    page = client.get(day).content.decode()
    time_step = re.search(rf'href="(/book/{SERVICE}/any/\d{{4}}-\d{{2}}-\d{{2}}/)"', page).group(1)
    # The day's last time: grow() books 10:00 on the coming days, which may take the first.
    details = re.findall(rf'href="({time_step}\d{{4}}/)"', client.get(time_step).content.decode())
    token = manage_token(appointment)
    manage = reverse("booking:manage", args=[token])
    move = reverse("booking:reschedule", args=[token])
    move_page = client.get(move).content.decode()
    move_day = re.search(rf'href="({re.escape(move)}\d{{4}}-\d{{2}}-\d{{2}}/)"', move_page).group(1)
    move_to = re.findall(rf'href="({move_day}\d{{4}}/)"', client.get(move_day).content.decode())
    therapist = appointment.therapist.slug
    return [
        "/book/",
        f"/book/{SERVICE}/",
        day,
        f"/book/{SERVICE}/{therapist}/",
        time_step,
        details[-1],
        reverse("booking:confirmation", args=[appointment.public_token]),
        reverse("booking:ics", args=[appointment.public_token]),
        manage,
        reverse("booking:cancel", args=[token]),
        move,
        move_day,
        move_to[-1],
    ]


PUBLIC = [
    "/",
    "/es/",
    "/articles/",
    "/articles/?q=calf",
    "/articles/?topic=low-back-pain",
    "/articles/topics/low-back-pain/",
    "/articles/tight-calf-muscles-low-back-pain/",
    "/articles/feed/rss/",
    "/articles/feed/atom/",
    "/sitemap.xml",
    "/robots.txt",
    "/newsletter/",
]


def grow(author, patient):
    """Five more articles with topics and references, two more therapists, more bookings."""
    from articles.services import save_article

    topics = list(Topic.objects.all())
    for n in range(5):
        article = save_article(
            article=Article(
                title=f"Calf stretch {n}",
                slug=f"calf-stretch-{n}",
                summary="Calf stretches for the low back.",
                body="Calf and low back. [@1]",
                author=author,
                status=Article.Status.PUBLISHED,
                published_at=timezone.now() - timedelta(minutes=n + 1),
            )
        )
        article.topics.set(topics)
        Reference.objects.bulk_create(
            Reference(article=article, position=p, authors="A", year=2000, title="T", source="S")
            for p in range(1, 4)
        )
    service = Service.objects.get(slug=SERVICE)
    # More treatments and therapists: the home page lists them all.
    more = [
        Service.objects.create(name=f"Extra {n}", slug=f"extra-{n}", duration_minutes=45, price=60)
        for n in range(3)
    ]
    template = Therapist.objects.offering(service).first()
    for n in range(2):
        extra = Therapist.objects.create(name=f"Extra {n}", slug=f"extra-{n}", bio="Calves.")
        extra.services.set([service, *more])
        for hours in template.working_hours.all():
            hours.pk = None
            hours.therapist = extra
            hours.save()
    # Bookings spread over the coming weeks, for every therapist.
    now = timezone.now()
    for therapist in Therapist.objects.offering(service):
        for days in range(3, 20, 4):
            start = timezone.localtime(now + timedelta(days=days)).replace(
                hour=10, minute=0, second=0, microsecond=0
            )
            try:
                book_appointment(service=service, therapist=therapist, start=start, patient=patient)
            except Exception:  # noqa: BLE001, S112  # not a working day for them: skip it
                continue


def test_no_public_page_or_booking_step_runs_more_queries_as_the_clinic_grows(client, patient):
    service = Service.objects.get(slug=SERVICE)
    therapist = Therapist.objects.offering(service).first()
    now = timezone.now()
    start = None
    for days in range(7, 30):
        candidate = timezone.localtime(now + timedelta(days=days)).replace(
            hour=14, minute=0, second=0, microsecond=0
        )
        try:
            appointment = book_appointment(
                service=service, therapist=therapist, start=candidate, patient=patient
            )
            start = candidate
            break
        except Exception:  # noqa: BLE001, S112  # not a working day: try the next
            continue
    assert start is not None
    paths = PUBLIC + booking_paths(client, appointment)
    before = {path: count_queries(client, path) for path in paths}
    grow(Article.objects.first().author, patient)
    assert Appointment.objects.count() > 5
    after = {path: count_queries(client, path) for path in paths}
    grown = {path: (before[path], after[path]) for path in paths if after[path] > before[path]}
    assert not grown, f"queries grew with more content (before, after): {grown}"
