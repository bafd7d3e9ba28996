"""`make run`'s steps: content loads once, the demo login exists only on the embedded default."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from articles.models import Article, Topic
from clinic.models import ClinicProfile, OpeningHours

pytestmark = pytest.mark.django_db


def test_loading_content_twice_duplicates_nothing(capsys):
    call_command("load_content")
    call_command("load_content")
    assert ClinicProfile.objects.count() == 1
    assert OpeningHours.objects.count() == 6
    assert Article.objects.count() == 1
    assert Topic.objects.count() == 4
    assert "0 article(s) added" in capsys.readouterr().out


def test_loading_content_again_keeps_staff_edits():
    call_command("load_content")
    ClinicProfile.objects.filter(pk=1).update(phone="1-209-555-0100")
    Article.objects.update(title="Edited by staff")
    call_command("load_content")
    assert ClinicProfile.objects.get().phone == "1-209-555-0100"
    assert Article.objects.get().title == "Edited by staff"


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
