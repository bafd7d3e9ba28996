"""A treatment for two: one booking takes two therapists and one couples room, all or
nothing; one confirmation and one manage link; moving or cancelling moves or cancels both."""

import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from icalendar import Calendar

from booking import links, services
from booking.availability import Availability
from booking.models import Appointment, Room, Service
from booking.services import PatientDetails, book_appointment
from clinic.models import OutgoingEmail
from tests.booking.test_views import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def couples(booking_rules, clinic):
    return Service.objects.create(
        name="Side-by-side massage",
        slug="side-by-side",
        duration_minutes=60,
        buffer_minutes=15,
        room_need=Service.RoomNeed.COUPLES,
        for_two=True,
        asks_pregnant=False,
    )


@pytest.fixture
def team(couples, make_therapist):
    return [make_therapist(name, services=[couples]) for name in ("Ana", "Ben", "Cleo")]


@pytest.fixture
def double(db):
    Room.objects.create(name="Single room")
    return Room.objects.create(name="Double room", kind=Room.Kind.COUPLES)


def pat(**intake):
    return PatientDetails(
        name="Pat Example", email="pat@example.com", phone="+12095550142", intake=intake
    )


def friend(name="Sam", **intake):
    return PatientDetails(name=name, email="", phone="", intake=intake)


def test_one_booking_takes_two_therapists_and_the_couples_room(couples, team, double, at):
    first = book_appointment(
        service=couples,
        therapist=None,
        start=at(10),
        patient=pat(intake_clot_signs=False),
        companion=friend(intake_clot_signs=True),
    )

    visits = list(Appointment.objects.order_by("pk"))
    assert len(visits) == 2 and visits[0] == first
    assert {v.room for v in visits} == {double} and visits[0].pair == visits[1].pair
    assert visits[0].therapist != visits[1].therapist
    assert [v.patient_name for v in visits] == ["Pat Example", "Sam"]
    assert [v.intake_clot_signs for v in visits] == [False, True]  # each answers for themself
    assert first.companion == visits[1]


def test_the_second_persons_name_is_optional(couples, team, double, at):
    book_appointment(
        service=couples, therapist=team[2], start=at(10), patient=pat(), companion=friend("")
    )

    names = list(Appointment.objects.order_by("pk").values_list("patient_name", flat=True))
    assert names == ["Pat Example", "Guest of Pat Example"]


def test_chosen_therapists_are_the_ones_booked(couples, team, double, at):
    ana, ben, cleo = team
    book_appointment(
        service=couples,
        therapist=cleo,
        second_therapist=ana,
        start=at(10),
        patient=pat(),
        companion=friend(),
    )
    assert set(Appointment.objects.values_list("therapist", flat=True)) == {cleo.pk, ana.pk}


def test_it_is_all_or_nothing_when_only_one_therapist_or_no_couples_room_is_free(
    couples, team, double, service, at
):
    ana, ben, cleo = team
    for who in (ben, cleo):  # busy with someone else's single visit
        who.services.add(service)
        book_appointment(service=service, therapist=who, start=at(10), patient=pat())
    before = Appointment.objects.count()

    with pytest.raises(services.SlotUnavailable):
        book_appointment(
            service=couples, therapist=None, start=at(10), patient=pat(), companion=friend()
        )
    assert Appointment.objects.count() == before
    times = Availability(service=couples, therapists=team).times_on(at(10).date())
    assert at(10) not in times and at(13) in times

    # Two therapists free, but the couples room taken by another couple.
    book_appointment(
        service=couples, therapist=None, start=at(14), patient=pat(), companion=friend()
    )
    assert at(14) not in Availability(service=couples, therapists=team).times_on(at(14).date())


def test_a_chosen_therapist_must_be_one_of_the_two(couples, team, double, at):
    ana, ben, cleo = team
    book_appointment(
        service=couples, therapist=ana, second_therapist=ben, start=at(9), patient=pat()
    )
    Appointment.objects.update(room=None)  # the room out of the way: therapists decide
    times = Availability(service=couples, therapists=team, required=[ana]).times_on(at(9).date())
    assert at(9) not in times
    assert at(9) not in Availability(service=couples, therapists=team).times_on(at(9).date())


def test_one_confirmation_naming_both_therapists_and_both_in_the_calendar_file(
    couples, team, double, at
):
    ana, ben, cleo = team
    book_appointment(
        service=couples,
        therapist=ana,
        second_therapist=ben,
        start=at(10),
        patient=pat(),
        companion=friend(),
    )

    (confirmation,) = OutgoingEmail.objects.filter(to=["pat@example.com"])
    assert "Ana and Ben" in confirmation.body_text and "Ana and Ben" in confirmation.body_html
    (ics,) = [a for a in confirmation.attachments if a["filename"].endswith(".ics")]
    event = Calendar.from_ical(ics["content"]).walk("VEVENT")[0]
    assert "Ana and Ben" in str(event["DESCRIPTION"])
    assert len(re.findall(r"/book/manage/", confirmation.body_text)) >= 1


def test_cancelling_cancels_both_with_one_email_and_moving_moves_both(couples, team, double, at):
    first = book_appointment(
        service=couples, therapist=None, start=at(10), patient=pat(), companion=friend()
    )
    moved = services.reschedule_appointment(appointment=first, start=at(14))
    assert set(Appointment.objects.values_list("starts_at", flat=True)) == {moved.starts_at}
    assert set(Appointment.objects.values_list("room", flat=True)) == {double.pk}
    sent = OutgoingEmail.objects.filter(to=["pat@example.com"]).count()

    services.cancel_appointment(appointment=first)

    assert set(Appointment.objects.values_list("status", flat=True)) == {"cancelled"}
    assert OutgoingEmail.objects.filter(to=["pat@example.com"]).count() == sent + 1


def test_a_couple_books_through_the_pages_and_manages_both_from_one_link(
    client, couples, team, double, at
):
    ana, ben, cleo = team
    therapists_page = client.get(reverse("booking:therapist", args=[couples.slug]))
    page = therapists_page.content.decode()
    assert "Any two therapists" in page and "Ana and Ben" in page
    pair = f"{ana.slug}--{ben.slug}"
    url = reverse("booking:details", args=[couples.slug, pair, at(10).date(), at(10).time()])
    form = client.get(url).content.decode()
    assert 'name="companion_name"' in form and 'name="companion_intake_clot_signs"' in form
    assert 'name="companion_intake_pregnant"' not in form  # not asked for this treatment

    data = form_data(
        client,
        url,
        intake_pregnant=None,
        companion_name="Sam Friend",
        companion_intake_clot_signs="yes",
        companion_intake_surgery_or_immobility="no",
        companion_intake_blood_thinners="no",
    )
    response = client.post(url, data)

    assert response.status_code == 303
    first, second = Appointment.objects.order_by("pk")
    assert {first.therapist, second.therapist} == {ana, ben}
    assert (second.patient_name, second.intake_clot_signs) == ("Sam Friend", True)
    confirmation = client.get(response["Location"]).content.decode()
    assert "Ana and Ben" in confirmation and "Sam Friend" in confirmation
    manage = client.get(urlsplit(links.manage_url(first)).path).content.decode()
    assert "Ana and Ben" in manage and "Sam Friend" in manage
    cancel = client.post(urlsplit(links.manage_url(first)).path + "cancel/", {"reason": ""})
    assert cancel.status_code in (302, 303)
    assert set(Appointment.objects.values_list("status", flat=True)) == {"cancelled"}


def test_a_couples_booking_missing_the_second_persons_answers_keeps_what_was_typed(
    client, couples, team, double, at
):
    url = reverse("booking:details", args=[couples.slug, "any", at(10).date(), at(10).time()])
    data = form_data(client, url, intake_pregnant=None, companion_name="Sam\x00Friend")

    response = client.post(url, data)

    assert response.status_code == 400
    assert "Left calf is tight." in response.content.decode()
    assert Appointment.objects.count() == 0


@pytest.mark.parametrize("pick", [(0, 0), (0, 1, 2), (0, None)])
def test_a_pair_that_is_not_two_therapists_offering_it_is_a_404(
    client, couples, team, double, at, pick
):
    slug = "--".join(team[i].slug if i is not None else "nobody" for i in pick)
    response = client.get(reverse("booking:day", args=[couples.slug, slug]))
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_couples_racing_for_the_one_couples_room_book_it_once(
    booking_rules, clinic, make_therapist, at
):
    from tests.conftest import race

    couples = Service.objects.create(
        name="Side by side",
        slug="side",
        duration_minutes=60,
        room_need=Service.RoomNeed.COUPLES,
        for_two=True,
    )
    Room.objects.create(name="Double room", kind=Room.Kind.COUPLES)
    team = [make_therapist(services=[couples]) for _ in range(12)]

    def attempt(i):  # each couple with their own two therapists
        try:
            return book_appointment(
                service=couples,
                therapist=team[2 * i],
                second_therapist=team[2 * i + 1],
                start=at(10),
                patient=pat(),
                companion=friend(),
            )
        except services.SlotUnavailable:
            return "taken"

    results = race(attempt, count=6)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count("taken") == 5
    assert Appointment.objects.count() == 2
