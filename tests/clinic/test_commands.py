"""`make run`'s steps: content loads once, the demo login exists only on the embedded default."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from articles.models import Article, Topic
from booking.models import BookingRules, Room, Service, Therapist, WorkingHours
from clinic.models import ClinicProfile, OpeningHours

pytestmark = pytest.mark.django_db


def test_loading_content_twice_duplicates_nothing(capsys):
    call_command("load_content")
    call_command("load_content")
    assert ClinicProfile.objects.count() == 1
    assert OpeningHours.objects.count() == 6
    assert Article.objects.count() == 1
    assert Topic.objects.count() == 4
    out = capsys.readouterr().out
    assert "3 therapist(s) added" in out
    assert "0 article(s) and 0 therapist(s) added" in out
    assert Therapist.objects.count() == 3 and Service.objects.count() == 5
    # Fewer rooms than therapists; one couples treatment, in the couples room.
    assert sorted(Room.objects.values_list("name", "kind")) == [
        ("Couples room", "couples"),
        ("Treatment room", "single"),
    ]
    assert list(Service.objects.filter(for_two=True).values_list("room_need", flat=True)) == [
        "couples"
    ]
    # Two intervals a weekday; Ana works three days, James a fifth (Saturday, one interval).
    assert WorkingHours.objects.count() == 3 * 2 * 4 - 2 + 1
    assert BookingRules.objects.get().cancellation_policy


def test_a_newcomer_can_book_at_once_after_loading_content():
    from django.utils import timezone

    from booking.availability import free_starts

    call_command("load_content")
    service = Service.objects.get(slug="calf-low-back-trigger-point")
    today = timezone.localdate()
    free = free_starts(
        service=service,
        therapists=list(Therapist.objects.offering(service)),
        first_day=today,
        last_day=today + timedelta(days=14),
    )
    assert sum(len(starts) for starts in free.values()) > 50


def test_loading_content_again_keeps_staff_edits():
    call_command("load_content")
    ClinicProfile.objects.filter(pk=1).update(phone="1-209-555-0100")
    Article.objects.update(title="Edited by staff")
    Service.objects.filter(slug="massage-60").update(duration_minutes=50)
    WorkingHours.objects.filter(therapist__slug="maria-lopez").delete()
    call_command("load_content")
    assert ClinicProfile.objects.get().phone == "1-209-555-0100"
    assert Article.objects.get().title == "Edited by staff"
    assert Service.objects.get(slug="massage-60").duration_minutes == 50
    assert not WorkingHours.objects.filter(therapist__slug="maria-lopez").exists()


def test_loading_content_gives_before_your_visit_in_both_languages_and_keeps_staff_text():
    call_command("load_content")
    profile = ClinicProfile.objects.get()
    for text in (profile.before_visit, profile.before_visit_es):
        assert "5" in text and len(text.split("\n\n")) >= 4  # early, clothes, parking, access
    assert profile.before_visit != profile.before_visit_es
    # An install from before the field existed gets the demo text; staff's own text is kept.
    ClinicProfile.objects.update(before_visit="Our own words.", before_visit_es="")
    call_command("load_content")
    profile.refresh_from_db()
    assert profile.before_visit == "Our own words."
    assert profile.before_visit_es.startswith("Llegue")


def test_demo_login_is_created_on_the_embedded_default(
    settings, capsys, django_user_model, monkeypatch
):
    settings.DEBUG = True
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the PostgreSQL pass pretends
    call_command("ensure_demo_admin")
    call_command("ensure_demo_admin")
    user = django_user_model.objects.get(username="admin")
    assert user.is_staff and user.check_password("clinic-demo-only")
    assert "admin / clinic-demo-only" in capsys.readouterr().out


@pytest.mark.parametrize(("debug", "vendor"), [(False, "sqlite"), (True, "postgresql")])
def test_demo_login_is_refused_in_production(
    settings, django_user_model, monkeypatch, debug, vendor
):
    settings.DEBUG = debug
    monkeypatch.setattr(connection, "vendor", vendor)
    with pytest.raises(CommandError, match="only on the embedded default"):
        call_command("ensure_demo_admin")
    assert not django_user_model.objects.filter(username="admin").exists()


def test_staff_write_before_your_visit_in_both_languages_in_the_admin(client, staff_user):
    call_command("load_content")
    client.force_login(staff_user)
    page = client.get("/admin/clinic/clinicprofile/1/change/").content.decode()
    assert 'name="before_visit"' in page and 'name="before_visit_es"' in page
