"""A freed time offered to the waitlist in turn and held for the one offered."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from booking import services
from booking.availability import Availability
from booking.models import Appointment, Hold, TimeOff, Vacancy, WaitlistEntry
from booking.services import PatientDetails, book_appointment
from clinic.models import OutgoingEmail
from tests.conftest import race, wait_for

pytestmark = pytest.mark.django_db
OFFER = "A time is free for you"


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


def someone(n):
    return PatientDetails(name=f"Patient {n}", email=f"p{n}@example.com", phone="+12095550142")


def join(service, day, *, n, therapist=None, parts=("morning",), joined_minutes=0, **extra):
    fields = {part: True for part in parts}
    return WaitlistEntry.objects.create(
        service=service,
        therapist=therapist,
        first_day=day,
        last_day=day,
        name=f"Waiting {n}",
        email=f"w{n}@example.com",
        phone="+12095550143",
        joined_at=timezone.now() - timedelta(days=1) + timedelta(minutes=joined_minutes),
        **fields,
        **extra,
    )


def offers_to(entry):
    return list(OutgoingEmail.objects.filter(to=[entry.email], subject__startswith=OFFER))


def offer_path(email):
    return urlsplit(re.search(r"https?://\S+/waitlist/offer/\S+/", email.body_text).group(0)).path


@pytest.fixture
def freed(service, therapist, at):
    """A visit at 10:00 on a working Monday, cancelled; its time offered as the task does."""

    def make(hour=10):
        visit = book_appointment(
            service=service, therapist=therapist, start=at(hour), patient=someone(0)
        )
        services.cancel_appointment(appointment=visit)
        return services.offer_freed_time(therapist_id=therapist.pk, start=at(hour))

    return make


def test_a_freed_time_is_offered_to_the_first_suitable_entry_in_join_order(
    service, therapist, at, freed
):
    day = at(10).date()
    later = join(service, day, n=1, joined_minutes=5)
    first = join(service, day, n=2, joined_minutes=1)
    afternoon_only = join(service, day, n=3, parts=("afternoon",), joined_minutes=0)

    hold = freed()

    assert hold.entry == first and hold.starts_at == at(10) and hold.state == "active"
    assert hold.blocked_until == at(11, 15)  # the treatment and its buffer
    assert timedelta(minutes=29) < hold.expires_at - timezone.now() <= timedelta(minutes=30)
    (email,) = offers_to(first)
    assert "Book this time" in email.body_html and offer_path(email)
    assert offers_to(later) == [] and offers_to(afternoon_only) == []


def test_the_hold_keeps_the_time_from_other_patients_and_from_staff(service, therapist, at, freed):
    join(service, at(10).date(), n=1)
    hold = freed()

    assert at(10) not in Availability(service=service, therapists=[therapist]).times_on(
        at(10).date()
    )
    with pytest.raises(services.SlotUnavailable):
        book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(9))
    staff_booking = Appointment(
        therapist=therapist,
        service=service,
        starts_at=at(10, 30),
        ends_at=at(11, 30),
        blocked_until=at(11, 45),
    )
    with pytest.raises(ValidationError, match="held for Waiting 1"), transaction.atomic():
        services.validate_not_overlapping(appointment=staff_booking)
    assert hold.state == "active"


def test_the_one_offered_books_the_held_time_and_the_hold_becomes_the_appointment(
    service, therapist, at, freed
):
    entry = join(service, at(10).date(), n=1)
    hold = freed()

    visit = book_appointment(
        service=service, therapist=therapist, start=at(10), patient=someone(1), hold=hold
    )

    hold.refresh_from_db()
    entry.refresh_from_db()
    assert (hold.state, hold.appointment, entry.state) == ("claimed", visit, "booked")
    with pytest.raises(services.OfferLost):  # a claim is spent once
        book_appointment(
            service=service, therapist=therapist, start=at(10), patient=someone(2), hold=hold
        )


def test_the_offer_link_opens_the_details_step_filled_in_and_books(client, service, at, freed):
    join(service, at(10).date(), n=1)
    freed()
    (email,) = OutgoingEmail.objects.filter(subject__startswith=OFFER)

    response = client.get(offer_path(email))
    assert response.status_code == 302 and "?offer=" in response.url
    page = client.get(response.url).content.decode()
    assert 'value="Waiting 1"' in page and 'value="w1@example.com"' in page
    assert "held for you" in page
    data = {
        "slot": re.search(r'name="slot" value="([^"]+)"', page).group(1),
        "submission_key": re.search(r'name="submission_key" value="([^"]+)"', page).group(1),
        "offer": re.search(r'name="offer" value="([^"]+)"', page).group(1),
        "name": "Waiting 1",
        "email": "w1@example.com",
        "phone": "(209) 555-0143",
        "consent": "on",
        **{
            name: "no"
            for name in (
                "intake_clot_signs",
                "intake_surgery_or_immobility",
                "intake_blood_thinners",
                "intake_pregnant",
            )
        },
    }
    booked = client.post(response.url.split("?")[0], data)
    assert booked.status_code == 303, booked.content.decode()[:500]
    assert Hold.objects.get().state == "claimed"
    assert Appointment.objects.active().get().patient_email == "w1@example.com"
    again = client.post(response.url.split("?")[0], data)  # a double click: the same booking
    assert again.status_code == 303 and again.url == booked.url
    assert client.get(offer_path(email)).status_code == 410


def test_an_unclaimed_hold_goes_to_the_next_in_line_once_however_often_beat_runs(
    client, service, at, freed
):
    day = at(10).date()
    first, second = join(service, day, n=1), join(service, day, n=2, joined_minutes=5)
    hold = freed()
    late = hold.expires_at + timedelta(seconds=1)

    assert services.end_expired_holds(now=hold.expires_at - timedelta(seconds=1)) == 0
    assert services.end_expired_holds(now=late) == 1
    assert services.end_expired_holds(now=late) == 0  # beat firing twice

    hold.refresh_from_db()
    assert hold.state == "expired"
    (next_hold,) = Hold.objects.active()
    assert next_hold.entry == second
    assert len(offers_to(first)) == 1 and len(offers_to(second)) == 1
    page = client.get(offer_path(offers_to(first)[0]))
    assert page.status_code == 410
    assert "the time was kept for you until then. You are still on the waitlist." in (
        page.content.decode()
    )

    # Nobody else waits: when the second hold ends too, the first is not offered it again.
    assert services.end_expired_holds(now=next_hold.expires_at + timedelta(seconds=1)) == 1
    assert not Hold.objects.active().exists()
    assert len(offers_to(first)) == 1


def test_one_time_is_never_offered_twice_to_one_entry(service, therapist, at, freed):
    join(service, at(10).date(), n=1)
    hold = freed()
    Hold.objects.filter(pk=hold.pk).update(state="released")

    assert services.offer_freed_time(therapist_id=therapist.pk, start=at(10)) is None
    assert Hold.objects.count() == 1


def test_staff_releasing_a_hold_offers_the_time_to_the_next_in_line(
    service, therapist, at, freed, django_capture_on_commit_callbacks
):
    day = at(10).date()
    join(service, day, n=1)
    second = join(service, day, n=2, joined_minutes=5)
    hold = freed()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.release_hold(hold=hold) is True
    assert services.release_hold(hold=hold) is False
    assert len(callbacks) == 1  # the offer is queued once the release commits
    offered = services.offer_freed_time(therapist_id=therapist.pk, start=at(10))
    assert offered.entry == second


def test_a_time_that_does_not_suit_or_is_not_free_is_offered_to_nobody(
    service, therapist, at, freed
):
    day = at(10).date()
    join(service, day, n=1, parts=("afternoon",))
    join(service, day + timedelta(days=1), n=2)
    join(service, day, n=3, therapist=type(therapist).objects.create(name="B", slug="b"))
    assert freed() is None
    book_appointment(service=service, therapist=therapist, start=at(14), patient=someone(5))
    join(service, day, n=4, parts=("afternoon",), joined_minutes=9)
    assert services.offer_freed_time(therapist_id=therapist.pk, start=at(14)) is None
    assert not Hold.objects.exists()


def test_the_hold_lasts_as_long_as_the_booking_rules_say(booking_rules, service, at, freed):
    booking_rules.waitlist_hold_minutes = 90
    booking_rules.save()
    join(service, at(10).date(), n=1)
    hold = freed()
    assert timedelta(minutes=89) < hold.expires_at - timezone.now() <= timedelta(minutes=90)


@pytest.mark.django_db(transaction=True)
def test_cancelling_and_moving_offer_the_freed_times_through_the_worker(
    booking_rules, clinic, service, therapist, at, celery_worker
):
    # Pass (a) runs the task eagerly at commit; pass (b) has the real worker run it.
    day = at(10).date()
    morning = join(service, day, n=1)
    afternoon = join(service, day, n=2, parts=("afternoon",))
    cancelled = book_appointment(
        service=service, therapist=therapist, start=at(10), patient=someone(0)
    )
    moved = book_appointment(service=service, therapist=therapist, start=at(14), patient=someone(1))

    services.cancel_appointment(appointment=cancelled)
    services.reschedule_appointment(appointment=moved, start=at(15, 30))

    holds = wait_for(lambda: Hold.objects.count() == 2 and list(Hold.objects.order_by("pk")))
    assert holds, "the worker offered nothing"
    assert {(h.entry_id, h.starts_at) for h in holds} == {
        (morning.pk, at(10)),
        (afternoon.pk, at(14)),
    }


@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_racing_on_one_expired_hold_offer_it_once(
    booking_rules, clinic, service, therapist, at
):
    day = at(10).date()
    join(service, day, n=1)
    join(service, day, n=2, joined_minutes=5)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    Appointment.objects.filter(pk=visit.pk).update(status="cancelled", cancelled_at=timezone.now())
    hold = services.offer_freed_time(therapist_id=therapist.pk, start=at(10))
    late = hold.expires_at + timedelta(seconds=1)

    results = race(lambda _: services.end_expired_holds(now=late), count=8)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(results) == 1
    assert Hold.objects.active().count() == 1
    assert OutgoingEmail.objects.filter(subject__startswith=OFFER).count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the exclusion constraint")
def test_the_database_refuses_two_active_holds_that_meet(service, therapist, at, freed):
    join(service, at(10).date(), n=1)
    other = join(service, at(10).date(), n=2)
    hold = freed()
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(
            entry=other,
            therapist=therapist,
            service=service,
            starts_at=at(10, 30),
            blocked_until=at(11, 45),
            expires_at=hold.expires_at,
        )


def test_the_beat_ends_expired_holds_every_minute(settings):
    from booking.tasks import end_expired_holds_task
    from clinic.celery import app

    (entry,) = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == end_expired_holds_task.name
    ]
    assert entry["schedule"] <= 60 and end_expired_holds_task.name in app.tasks
    assert end_expired_holds_task.apply().get() == 0


def test_leaving_the_list_releases_a_time_held_for_you(
    service, at, freed, django_capture_on_commit_callbacks
):
    entry = join(service, at(10).date(), n=1)
    hold = freed()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.leave_waitlist(entry=entry)
    hold.refresh_from_db()
    assert hold.state == "released" and len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_thirty_claims_of_one_held_time_book_it_once(booking_rules, clinic, service, therapist, at):
    join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    Appointment.objects.filter(pk=visit.pk).update(status="cancelled", cancelled_at=timezone.now())
    hold = services.offer_freed_time(therapist_id=therapist.pk, start=at(10))

    def claim(i):
        try:
            return book_appointment(
                service=service,
                therapist=therapist,
                start=at(10),
                patient=someone(100 + i),
                hold=Hold.objects.get(pk=hold.pk),
            )
        except services.OfferLost:
            return "quicker"

    results = race(claim, count=30)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count("quicker") == 29
    assert Appointment.objects.active().count() == 1
    assert Hold.objects.get().state == "claimed"


def test_offered_to_several_at_once_the_first_to_book_wins_and_the_others_hear_so(
    client, booking_rules, service, therapist, at, freed
):
    booking_rules.waitlist_offer_to = 2
    booking_rules.save()
    day = at(10).date()
    first, second = join(service, day, n=1), join(service, day, n=2, joined_minutes=5)
    third = join(service, day, n=3, joined_minutes=9)

    hold = freed()

    held = list(Hold.objects.active().of_round(hold).order_by("entry__joined_at"))
    assert [h.entry for h in held] == [first, second]
    assert offers_to(third) == []
    assert "first to book it gets it" in offers_to(second)[0].body_text
    # Both may see the time as free for them; nobody else can.
    for each in held:
        assert at(10) in Availability(
            service=service, therapists=[therapist], holding=each
        ).times_on(day)
    assert at(10) not in Availability(service=service, therapists=[therapist]).times_on(day)

    book_appointment(
        service=service, therapist=therapist, start=at(10), patient=someone(2), hold=held[1]
    )
    states = dict(Hold.objects.values_list("entry_id", "state"))
    assert states == {first.pk: "lost", second.pk: "claimed"}
    with pytest.raises(services.OfferLost):
        book_appointment(
            service=service, therapist=therapist, start=at(10), patient=someone(1), hold=held[0]
        )
    page = client.get(offer_path(offers_to(first)[0]))
    assert page.status_code == 410
    assert b"someone was quicker. You are still on the waitlist." in page.content
    first.refresh_from_db()
    assert first.state == "waiting"  # still on the list


def test_a_round_offered_to_several_passes_on_only_once_all_of_it_has_expired(
    booking_rules, service, at, freed
):
    booking_rules.waitlist_offer_to = 2
    booking_rules.save()
    day = at(10).date()
    for n in range(4):
        join(service, day, n=n, joined_minutes=n)
    hold = freed()
    late = hold.expires_at + timedelta(seconds=1)

    assert services.end_expired_holds(now=late) == 2
    assert services.end_expired_holds(now=late) == 0
    next_round = list(Hold.objects.active().order_by("entry__joined_at"))
    assert [h.entry.name for h in next_round] == ["Waiting 2", "Waiting 3"]
    assert len({h.offer_round for h in next_round}) == 1 != hold.offer_round


@pytest.mark.django_db(transaction=True)
def test_thirty_claimers_offered_one_time_at_once_book_it_once(
    booking_rules, clinic, service, therapist, at
):
    booking_rules.waitlist_offer_to = 10
    booking_rules.save()
    day = at(10).date()
    for n in range(10):
        join(service, day, n=n, joined_minutes=n)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    Appointment.objects.filter(pk=visit.pk).update(status="cancelled", cancelled_at=timezone.now())
    first = services.offer_freed_time(therapist_id=therapist.pk, start=at(10))
    holds = list(Hold.objects.of_round(first))
    assert len(holds) == 10

    def claim(i):  # each of the ten offered, three times over (a double click, two tabs)
        try:
            return book_appointment(
                service=service,
                therapist=therapist,
                start=at(10),
                patient=someone(100 + i),
                hold=holds[i % 10],
            )
        except services.OfferLost:
            return "quicker"

    results = race(claim, count=30)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count("quicker") == 29
    assert Appointment.objects.active().count() == 1
    assert sorted(Hold.objects.values_list("state", flat=True)) == ["claimed"] + ["lost"] * 9


def test_staff_see_holds_in_the_schedule_and_a_count_of_times_filled(
    client, staff_user, service, therapist, at, freed
):
    entry = join(service, at(10).date(), n=1)
    hold = freed()
    client.force_login(staff_user)

    page = client.get(
        "/admin/booking/appointment/schedule/",
        {"date": at(10).date().isoformat(), "view": "day"},
    ).content.decode()
    assert "Held for Waiting 1 (waitlist)" in page
    assert "10:00–11:15" in page

    book_appointment(
        service=service, therapist=therapist, start=at(10), patient=someone(1), hold=hold
    )
    listing = client.get("/admin/booking/hold/").content.decode()
    assert "Freed times filled from the waitlist: 1 in the last 30 days, 1 in all." in listing
    assert entry.name in listing


def test_staff_release_holds_from_the_admin(client, staff_user, service, at, freed):
    join(service, at(10).date(), n=1)
    hold = freed()
    client.force_login(staff_user)
    response = client.post(
        "/admin/booking/hold/", {"action": "release", "_selected_action": [hold.pk]}
    )
    assert response.status_code == 302
    hold.refresh_from_db()
    assert hold.state == "released"


def test_a_freed_time_whose_task_never_ran_is_offered_by_the_beat(service, therapist, at):
    entry = join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    # Inside this test's transaction the after-commit task never runs: as if the broker
    # had been down when the patient cancelled.
    services.cancel_appointment(appointment=visit)
    (vacancy,) = Vacancy.objects.pending()
    assert (vacancy.starts_at, vacancy.ends_at) == (at(10), at(11, 15))
    assert not Hold.objects.exists()

    from booking.tasks import end_expired_holds_task

    end_expired_holds_task.apply().get()
    (hold,) = Hold.objects.all()
    assert hold.entry == entry and hold.starts_at == at(10)
    assert not Vacancy.objects.pending().exists()
    end_expired_holds_task.apply().get()  # again: nothing new
    assert Hold.objects.count() == 1 and len(offers_to(entry)) == 1


def test_a_vacancy_is_offered_once_however_often_it_is_processed(service, therapist, at):
    join(service, at(10).date(), n=1)
    join(service, at(10).date(), n=2, joined_minutes=5)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    services.cancel_appointment(appointment=visit)
    vacancy = Vacancy.objects.get()

    assert len(services.offer_vacancy(vacancy_id=vacancy.pk)) == 1
    assert services.offer_vacancy(vacancy_id=vacancy.pk) == []
    assert Hold.objects.count() == 1


def test_staff_deleting_an_appointment_or_removing_time_off_frees_time_for_the_waitlist(
    client, staff_user, service, therapist, at
):
    day = at(10).date()
    morning = join(service, day, n=1)
    afternoon = join(service, day, n=2, parts=("afternoon",))
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    away = TimeOff.objects.create(therapist=therapist, starts_at=at(13), ends_at=at(17))
    client.force_login(staff_user)

    response = client.post(f"/admin/booking/appointment/{visit.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Appointment.objects.exists()
    services.remove_time_off(absences=[away])

    for vacancy in Vacancy.objects.pending():
        services.offer_vacancy(vacancy_id=vacancy.pk)
    holds = {h.entry_id: h.starts_at for h in Hold.objects.all()}
    assert holds == {morning.pk: at(10), afternoon.pk: at(13)}


def test_staff_moving_or_cancelling_a_visit_in_the_admin_frees_its_old_time(
    client, staff_user, service, therapist, at
):
    from django.contrib.admin.sites import site

    from booking.admin import AppointmentAdmin

    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    admin = AppointmentAdmin(Appointment, site)
    before = Appointment.objects.get(pk=visit.pk)
    assert services.record_freed_by_staff_edit(before=before, after=visit) is None  # unchanged
    visit.starts_at, visit.ends_at, visit.blocked_until = at(14), at(15), at(15, 15)
    with transaction.atomic():
        admin.save_model(None, visit, None, change=True)
    (vacancy,) = Vacancy.objects.all()
    assert (vacancy.starts_at, vacancy.ends_at) == (at(10), at(11, 15))


def test_hours_staff_add_are_offered_on_each_day_they_fall_on(booking_rules, therapist, at):
    from booking.models import WorkingHours

    evening = WorkingHours(therapist=therapist, weekday=at(10).weekday(), opens=at(17).time())
    evening.closes = at(20).time()
    now = timezone.now()
    with transaction.atomic():
        services.record_hours_added(intervals=[evening], now=now)
    starts = sorted(v.starts_at for v in Vacancy.objects.all())
    assert at(17) in starts and at(17, days=7) in starts
    assert {s.astimezone(at(10).tzinfo).weekday() for s in starts} == {at(10).weekday()}
    today = timezone.localdate(now)
    window = [today + timedelta(days=n) for n in range(booking_rules.max_days_ahead + 1)]
    assert len(starts) == sum(1 for day in window if day.weekday() == at(10).weekday())


def test_erasing_someone_with_a_held_time_passes_the_time_on(service, at, freed):
    from clinic import personal_data as site_data

    join(service, at(10).date(), n=1)
    join(service, at(10).date(), n=2, joined_minutes=5)
    hold = freed()
    Vacancy.objects.update(offered_at=timezone.now())

    assert site_data.erase(email="w1@example.com")["waitlist"] == 1
    assert not Hold.objects.filter(pk=hold.pk).exists()
    (vacancy,) = Vacancy.objects.pending()
    (next_hold,) = services.offer_vacancy(vacancy_id=vacancy.pk)
    assert next_hold.entry.email == "w2@example.com"


def test_a_spanish_offer_that_ran_out_says_so_in_spanish(client, service, at, freed):
    join(service, at(10).date(), n=1, language="es")
    hold = freed()
    services.end_expired_holds(now=hold.expires_at + timedelta(seconds=1))
    (email,) = OutgoingEmail.objects.filter(subject__startswith="Hay una hora libre para usted")
    assert offer_path(email).startswith("/es/")
    page = client.get(offer_path(email)).content.decode()
    assert "la hora se le guardó hasta entonces. Sigue en la lista de espera." in page


# --- time freed in a room: the room may have been all another therapist lacked -------------
@pytest.fixture
def one_room(service):
    """Two therapists (Maria and Ana) and one treatment room their treatment needs: the
    room, not the therapists, decides what is free."""
    from booking.models import Room, Service

    service.room_need = Service.RoomNeed.ANY
    service.save()
    return Room.objects.create(name="Garden room")


@pytest.fixture
def ana(make_therapist):
    return make_therapist("Ana Ruiz")


def test_a_cancelled_visit_frees_its_room_for_a_patient_waiting_for_another_therapist(
    service, therapist, ana, one_room, at
):
    day = at(10).date()
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    # Ana is free at 10:00 but the only room is taken: nothing to offer her patients.
    assert at(10) not in Availability(service=service, therapists=[ana]).times_on(day)
    for_ana = join(service, day, n=1, therapist=ana, joined_minutes=1)
    for_maria = join(service, day, n=2, therapist=therapist, joined_minutes=5)

    services.cancel_appointment(appointment=visit)
    (vacancy,) = Vacancy.objects.pending()
    holds = services.offer_vacancy(vacancy_id=vacancy.pk)

    # Ana's patient joined first: she is offered 10:00 with Ana, in the room; Maria's
    # patient, later in line, is not (the room is held for Ana's).
    assert [(h.entry, h.therapist, h.room, h.starts_at) for h in holds] == [
        (for_ana, ana, one_room, at(10))
    ]
    assert len(offers_to(for_ana)) == 1 and offers_to(for_maria) == []
    assert at(10) not in Availability(service=service, therapists=[therapist, ana]).times_on(day)


def test_a_visit_moved_or_deleted_frees_its_room_for_another_therapists_patient(
    service, therapist, ana, one_room, at
):
    monday, tuesday = at(10).date(), at(10, days=1).date()
    moved = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    deleted = book_appointment(
        service=service, therapist=therapist, start=at(10, days=1), patient=someone(1)
    )
    on_monday = join(service, monday, n=1, therapist=ana)
    on_tuesday = join(service, tuesday, n=2, therapist=ana)

    services.reschedule_appointment(appointment=moved, start=at(15))
    services.delete_appointments(appointments=[deleted])
    for vacancy in Vacancy.objects.pending():
        services.offer_vacancy(vacancy_id=vacancy.pk)

    holds = {h.entry: (h.therapist, h.room, h.starts_at) for h in Hold.objects.all()}
    assert holds == {
        on_monday: (ana, one_room, at(10)),
        on_tuesday: (ana, one_room, at(10, days=1)),
    }


def test_a_room_closure_staff_delete_or_shorten_is_offered_to_the_waitlist(
    client, staff_user, service, therapist, one_room, at
):
    from booking.models import RoomClosure

    day = at(10).date()
    morning = join(service, day, n=1)
    tuesday = join(service, at(10, days=1).date(), n=2)
    closed = RoomClosure.objects.create(room=one_room, starts_at=at(0), ends_at=at(23))
    closed_too = RoomClosure.objects.create(
        room=one_room, starts_at=at(0, days=1), ends_at=at(23, days=1)
    )
    client.force_login(staff_user)

    def closure_form(index, closure, starts_at, **extra):
        start, end = timezone.localtime(starts_at), timezone.localtime(closure.ends_at)
        return {
            f"closures-{index}-id": closure.pk,
            f"closures-{index}-room": one_room.pk,
            f"closures-{index}-starts_at_0": start.date().isoformat(),
            f"closures-{index}-starts_at_1": start.strftime("%H:%M:%S"),
            f"closures-{index}-ends_at_0": end.date().isoformat(),
            f"closures-{index}-ends_at_1": end.strftime("%H:%M:%S"),
            f"closures-{index}-reason": "",
            **{f"closures-{index}-{key}": value for key, value in extra.items()},
        }

    response = client.post(
        f"/admin/booking/room/{one_room.pk}/change/",
        {
            "name": one_room.name,
            "kind": "single",
            "is_bookable": "on",
            "display_order": "0",
            "closures-TOTAL_FORMS": "2",
            "closures-INITIAL_FORMS": "2",
            "closures-MIN_NUM_FORMS": "0",
            "closures-MAX_NUM_FORMS": "1000",
            **closure_form(0, closed, closed.starts_at, DELETE="on"),
            # Tuesday's closure shortened: it now begins at noon.
            **closure_form(1, closed_too, at(12, days=1)),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(RoomClosure.objects.values_list("starts_at", flat=True)) == [at(12, days=1)]

    assert services.offer_pending_vacancies() == 2
    holds = {h.entry: (h.therapist, h.room, h.starts_at) for h in Hold.objects.all()}
    assert holds == {
        morning: (therapist, one_room, at(9)),
        tuesday: (therapist, one_room, at(9, days=1)),
    }


def test_a_room_closure_edited_and_deleted_in_one_post_offers_the_time_it_had(
    service, therapist, one_room, at
):
    from booking.models import RoomClosure

    morning = join(service, at(10).date(), n=1)
    closed = RoomClosure.objects.create(room=one_room, starts_at=at(0), ends_at=at(23))
    as_posted = RoomClosure.objects.get(pk=closed.pk)
    as_posted.starts_at = at(12)  # the form's copy: changed, and ticked for deletion
    services.change_room_closures(saved=[], deleted=[as_posted])

    assert not RoomClosure.objects.exists()
    assert services.offer_pending_vacancies() == 1
    assert {(h.entry, h.starts_at) for h in Hold.objects.all()} == {(morning, at(9))}


def test_time_freed_in_a_room_is_offered_once_however_often_beat_runs(
    service, therapist, ana, one_room, at
):
    day = at(10).date()
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    for_any = join(service, day, n=1, joined_minutes=1)
    for_ana = join(service, day, n=2, therapist=ana, joined_minutes=5)
    services.cancel_appointment(appointment=visit)
    (vacancy,) = Vacancy.objects.pending()

    (hold,) = services.offer_vacancy(vacancy_id=vacancy.pk)
    assert services.offer_vacancy(vacancy_id=vacancy.pk) == []
    for _ in range(2):  # beat firing twice, a retried task
        assert services.offer_pending_vacancies() == 0
        assert services.end_expired_holds() == 0
        for who in (therapist, ana):
            assert services.offer_freed_time(therapist_id=who.pk, start=at(10)) is None
        assert services.offer_freed_time(room_id=one_room.pk, start=at(10)) is None
    assert (hold.entry, hold.therapist, hold.room) == (for_any, therapist, one_room)
    assert Hold.objects.count() == 1 and len(offers_to(for_any)) == 1

    # Unclaimed, it passes on once to the next in line, whoever's patient (the room was
    # what Ana lacked), and never back to the first, with Maria or with Ana.
    late = hold.expires_at + timedelta(seconds=1)
    assert services.end_expired_holds(now=late) == 1
    assert services.end_expired_holds(now=late) == 0
    (next_hold,) = Hold.objects.active()
    assert (next_hold.entry, next_hold.therapist, next_hold.room) == (for_ana, ana, one_room)
    assert services.end_expired_holds(now=next_hold.expires_at + timedelta(seconds=1)) == 1
    assert not Hold.objects.active().exists()
    assert len(offers_to(for_any)) == 1 and len(offers_to(for_ana)) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the exclusion constraint")
def test_a_room_held_from_the_waitlist_cannot_be_booked_over_by_another_therapist(
    service, therapist, ana, make_therapist, one_room, at
):
    from tests.booking.test_occupancy import raw_appointment

    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    join(service, at(10).date(), n=1, therapist=ana)
    services.cancel_appointment(appointment=visit)
    (hold,) = services.offer_vacancy(vacancy_id=Vacancy.objects.get().pk)
    assert (hold.therapist, hold.room) == (ana, one_room)

    # A third therapist, free then, written straight into the held room: refused.
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_appointment(make_therapist("Lee Park"), service, at(10, 30), room=one_room)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(
            entry=join(service, at(10).date(), n=2),
            therapist=therapist,
            service=service,
            room=one_room,
            starts_at=at(10),
            blocked_until=at(11, 15),
            expires_at=hold.expires_at,
        )


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="dropping a constraint in a test is PostgreSQL's"
)
def test_migration_0017_keeps_the_hold_that_matters_of_one_entrys_two_for_one_start(
    service, therapist, ana, at
):
    # The old constraint let two racing offers give one entry one start twice (two
    # therapists); the new one refuses that, so the migration keeps one first.
    import importlib

    from django.apps import apps

    migration = importlib.import_module("booking.migrations.0017_vacancy_room")
    (constraint,) = [c for c in Hold._meta.constraints if c.name == "hold_one_offer_per_entry"]
    with connection.schema_editor() as editor:
        editor.remove_constraint(Hold, constraint)
    entry = join(service, at(10).date(), n=1)
    other = join(service, at(10).date(), n=2)

    def hold(who, state, for_entry=entry):
        return Hold.objects.create(
            entry=for_entry,
            therapist=who,
            service=service,
            starts_at=at(10),
            blocked_until=at(11, 15),
            expires_at=at(10) - timedelta(hours=1),
            state=state,
        )

    gone = hold(therapist, Hold.State.EXPIRED)
    kept = hold(ana, Hold.State.ACTIVE)
    another_entrys = hold(therapist, Hold.State.LOST, for_entry=other)

    migration.one_hold_per_entry_and_start(apps, None)

    assert set(Hold.objects.values_list("pk", flat=True)) == {kept.pk, another_entrys.pk}
    assert not Hold.objects.filter(pk=gone.pk).exists()
