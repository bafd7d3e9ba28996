"""Staff see which articles bring bookings: per article in the article list and the appointments."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.admin import BOOKINGS_30_DAYS, BOOKINGS_365_DAYS
from booking.models import Appointment

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user, clinic):
    client.force_login(staff_user)
    return client


@pytest.fixture
def booked_from(therapist, service):
    """booked_from(article, days_ago, status=confirmed): a booking made that long ago."""
    counter = iter(range(100_000))

    def make(article, days_ago, status=Appointment.Status.CONFIRMED):
        n = next(counter)
        now = timezone.now()
        # Each in its own hour a year and more ahead: never overlapping, whatever the counter.
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=400, hours=2 * n)
        return Appointment.objects.create(
            therapist=therapist,
            service=service,
            starts_at=start,
            ends_at=start + service.duration,
            blocked_until=start + service.duration + service.buffer,
            status=status,
            cancelled_at=now if status == Appointment.Status.CANCELLED else None,
            patient_name=f"Reader {n}",
            patient_email="reader@example.com",
            patient_phone="+12095550142",
            consented_to_policy_at=now,
            created_at=now - timedelta(days=days_ago),
            source_article=article,
        )

    return make


@pytest.fixture
def counted(make_article, booked_from):
    """Calf: 2 in 30 days, 3 in 365 (a cancelled one and a two-year-old one not counted).
    Hips: 1 in 365 days, none in 30. Neck: no bookings."""
    calf = make_article(title="Calf pain after a flight")
    hips = make_article(title="Tight hips at the desk")
    make_article(title="A stiff neck")
    booked_from(calf, days_ago=1)
    booked_from(calf, days_ago=29)
    booked_from(calf, days_ago=200)
    booked_from(calf, days_ago=3, status=Appointment.Status.CANCELLED)
    booked_from(calf, days_ago=800)
    booked_from(hips, days_ago=40, status=Appointment.Status.NO_SHOW)
    return calf, hips


def test_the_article_list_counts_bookings_over_30_and_365_days_without_cancelled_ones(
    staff, counted
):
    calf, hips = counted
    page = staff.get(reverse("admin:articles_article_changelist"))
    html = page.content.decode()
    assert BOOKINGS_30_DAYS in html and BOOKINGS_365_DAYS in html
    assert "not counting cancelled" in BOOKINGS_30_DAYS
    shown = {a.title: (a.bookings_30, a.bookings_365) for a in page.context["cl"].result_list}
    assert shown == {
        "Calf pain after a flight": (2, 3),
        "Tight hips at the desk": (0, 1),
        "A stiff neck": (0, 0),
    }


def test_the_article_list_counts_bookings_without_a_query_per_article(
    staff, counted, make_article, booked_from, django_assert_max_num_queries
):
    url = reverse("admin:articles_article_changelist")
    staff.get(url)
    with CaptureQueriesContext(connection) as few:
        staff.get(url)
    for n in range(5):
        booked_from(make_article(title=f"More {n}"), days_ago=n)
    with django_assert_max_num_queries(len(few)):
        staff.get(url)


def test_the_list_sorts_by_bookings_most_first(staff, counted):
    columns = staff.get(reverse("admin:articles_article_changelist")).context["cl"].list_display
    by_365 = columns.index("bookings_365")  # the checkbox is column 0, so this is 1-based
    page = staff.get(reverse("admin:articles_article_changelist"), {"o": f"-{by_365}"})
    titles = [article.title for article in page.context["cl"].result_list]
    assert titles[:2] == ["Calf pain after a flight", "Tight hips at the desk"]


def test_staff_choose_the_recommended_service_on_the_article_form(staff, counted, service):
    calf, _ = counted
    page = staff.get(reverse("admin:articles_article_change", args=[calf.pk]))
    form = page.context["adminform"].form
    assert "recommended_service" in form.fields
    assert list(form.fields["recommended_service"].queryset) == [service]


def test_the_appointment_list_shows_bookings_by_article_with_the_same_counts(staff, counted):
    calf, hips = counted
    page = staff.get(reverse("admin:booking_appointment_changelist"))
    shown = [(a.title, a.bookings_30, a.bookings_365) for a in page.context["article_bookings"]]
    assert shown == [("Calf pain after a flight", 2, 3), ("Tight hips at the desk", 0, 1)]
    html = page.content.decode()
    assert "Bookings by article" in html
    assert f'href="?source_article={calf.pk}"' in html


def test_the_came_from_article_filter_keeps_that_articles_bookings(staff, counted):
    calf, hips = counted
    url = reverse("admin:booking_appointment_changelist")
    from_hips = staff.get(url, {"source_article": hips.pk}).context["cl"].result_list
    assert [a.source_article for a in from_hips] == [hips]
    from_any = staff.get(url, {"source_article": "any"}).context["cl"].result_count
    assert from_any == 6
    assert staff.get(url, {"source_article": "none"}).context["cl"].result_count == 0
