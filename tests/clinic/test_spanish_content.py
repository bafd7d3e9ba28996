"""The clinic's own content on the Spanish pages: what staff wrote in Spanish, else English."""

import pytest
from django.core.management import call_command

from booking.models import BookingRules, Service
from clinic.models import ClinicProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(db):
    call_command("load_content")


def test_the_spanish_pages_show_the_spanish_profile_services_policy_and_topics(client, loaded):
    home = client.get("/es/").content.decode()
    assert "Somos una pequeña clínica" in home
    assert "We are a small massage" not in home
    services = client.get("/es/book/").content.decode()
    assert "Masaje de 60 minutos" in services and "60-minute massage" not in services
    therapists = client.get("/es/book/massage-60/").content.decode()
    assert "Masajista con licencia" in therapists
    article = client.get("/es/articles/tight-calf-muscles-low-back-pain/").content.decode()
    assert "Dolor lumbar" in article
    assert "Sesión de puntos gatillo en pantorrilla y zona lumbar" in article


def test_the_english_pages_keep_the_english(client, loaded):
    home = client.get("/").content.decode()
    assert "We are a small massage" in home and "Somos una pequeña clínica" not in home
    assert "60-minute massage" in client.get("/book/").content.decode()


def test_a_missing_spanish_text_falls_back_to_the_english(client, loaded):
    Service.objects.filter(slug="massage-60").update(name_es="")
    assert "60-minute massage" in client.get("/es/book/").content.decode()


def test_loading_again_never_overwrites_what_staff_wrote_in_spanish(loaded):
    Service.objects.filter(slug="massage-60").update(name_es="Masaje de una hora")
    BookingRules.objects.update(cancellation_policy_es="Avísenos un día antes.")
    ClinicProfile.objects.update(tagline_es="")
    call_command("load_content")
    assert Service.objects.get(slug="massage-60").name_es == "Masaje de una hora"
    assert BookingRules.objects.get().cancellation_policy_es == "Avísenos un día antes."
    assert ClinicProfile.objects.get().tagline_es  # blank is filled in again
