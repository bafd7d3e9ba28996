"""Rooms: a time is offered only when a therapist and a suitable room are both free; the
booking picks the room; the database refuses two visits in one room at once."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from booking import services, slots
from booking.availability import Availability
from booking.models import Appointment, Room, RoomClosure, Service
from booking.services import PatientDetails, book_appointment
from tests.booking.test_occupancy import raw_appointment
from tests.conftest import race

TZ = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)
MONDAY = date(2027, 3, 1)
SUNDAY_NOON = datetime(2027, 2, 28, 12, tzinfo=TZ)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's"
)


def local(hour, minute=0):
    return datetime.combine(MONDAY, time(hour, minute), tzinfo=TZ)


def engine(*, therapists, rooms, buffer=timedelta(0)):
    free = slots.free_starts(
        therapists=therapists,
        closures=[],
        duration=HOUR,
        buffer=buffer,
        rules=slots.Rules(step=HOUR, min_notice=HOUR, max_days_ahead=60),
        first_day=MONDAY,
        last_day=MONDAY,
        tz=TZ,
        now=SUNDAY_NOON,
        rooms=rooms,
    )
    return {pk: [s.astimezone(TZ).hour for s in found] for pk, found in free.items()}


NINE_TO_ONE = {0: [(time(9), time(13))]}


# --- the pure engine ------------------------------------------------------------------
def test_a_time_is_offered_only_while_a_suitable_room_is_free_too():
    therapists = [slots.TherapistHours(1, NINE_TO_ONE), slots.TherapistHours(2, NINE_TO_ONE)]
    room = slots.RoomBusy(7, [(local(10), local(11)), (local(11), local(12))])

    assert engine(therapists=therapists, rooms=None) == {1: [9, 10, 11, 12], 2: [9, 10, 11, 12]}
    assert engine(therapists=therapists, rooms=[room]) == {1: [9, 12], 2: [9, 12]}
    assert engine(therapists=therapists, rooms=[]) == {1: [], 2: []}


def test_any_one_free_room_will_do_but_one_room_must_hold_the_whole_visit():
    therapists = [slots.TherapistHours(1, NINE_TO_ONE)]
    first_half = slots.RoomBusy(7, [(local(10), local(10, 30))])
    second_half = slots.RoomBusy(8, [(local(10, 30), local(11))])

    assert engine(therapists=therapists, rooms=[first_half, second_half]) == {1: [9, 11, 12]}
    assert engine(therapists=therapists, rooms=[first_half, slots.RoomBusy(9)]) == {
        1: [9, 10, 11, 12]
    }


def test_the_room_is_kept_for_the_buffer_after_a_visit():
    therapists = [slots.TherapistHours(1, NINE_TO_ONE)]
    room = slots.RoomBusy(7, [(local(9), local(10, 15))])  # a visit and its cleaning

    assert engine(therapists=therapists, rooms=[room]) == {1: [11, 12]}
    # Our own buffer too: a 12:00 visit with 15 minutes after meets a booking at 13:00.
    later = slots.RoomBusy(7, [(local(13), local(14))])
    assert engine(therapists=therapists, rooms=[later], buffer=timedelta(minutes=15)) == {
        1: [9, 10, 11]
    }


def test_the_first_room_free_is_picked_in_the_order_given():
    taken = slots.RoomBusy(1, [(local(10), local(11))])
    free = [taken, slots.RoomBusy(2), slots.RoomBusy(3)]

    assert slots.free_room(free, local(10), local(11)) == 2
    assert slots.free_room(free, local(11), local(12)) == 1
    assert slots.free_room([taken], local(10, 30), local(11, 30)) is None


def test_side_by_side_keeps_the_starts_two_therapists_share():
    a, b = datetime(2027, 3, 1, 17, tzinfo=UTC), datetime(2027, 3, 1, 18, tzinfo=UTC)
    assert slots.side_by_side({1: [a, b], 2: [b], 3: []}) == {b: [1, 2]}


# --- with the database ------------------------------------------------------------------


def someone(n):
    return PatientDetails(name=f"Patient {n}", email=f"p{n}@example.com", phone="+12095550142")


@pytest.fixture
def roomed(booking_rules, clinic, service):
    service.room_need = Service.RoomNeed.ANY
    service.save()
    return service


@pytest.fixture
def make_room(db):
    def make(name, kind=Room.Kind.SINGLE, **fields):
        return Room.objects.create(name=name, kind=kind, **fields)

    return make


@pytest.mark.django_db
def test_with_one_room_no_preference_offers_a_time_once_and_the_booking_takes_the_room(
    roomed, make_therapist, make_room, at
):
    therapists = [make_therapist() for _ in range(3)]
    room = make_room("Garden room")

    first = book_appointment(service=roomed, therapist=None, start=at(10), patient=someone(1))

    assert first.room == room
    times = Availability(service=roomed, therapists=therapists).times_on(at(10).date())
    assert at(10) not in times and at(9) not in times and at(13) in times
    with pytest.raises(services.SlotUnavailable):
        book_appointment(service=roomed, therapist=therapists[2], start=at(10), patient=someone(2))


@pytest.mark.django_db
def test_single_rooms_are_given_first_and_the_couples_room_when_they_are_taken(
    roomed, make_therapist, make_room, at
):
    couples = make_room("Double", kind=Room.Kind.COUPLES, display_order=0)
    single = make_room("Small", display_order=5)
    make_therapist(), make_therapist()

    first = book_appointment(service=roomed, therapist=None, start=at(10), patient=someone(1))
    second = book_appointment(service=roomed, therapist=None, start=at(10), patient=someone(2))

    assert (first.room, second.room) == (single, couples)


@pytest.mark.django_db
def test_a_closed_or_unbookable_room_is_never_given(roomed, therapist, make_room, at):
    closed = make_room("Closed for repairs")
    RoomClosure.objects.create(room=closed, starts_at=at(0), ends_at=at(12))
    make_room("Stored", is_bookable=False)

    times = Availability(service=roomed, therapists=[therapist]).times_on(at(10).date())

    assert at(10) not in times and at(13) in times


@pytest.mark.django_db
def test_a_treatment_that_needs_no_room_ignores_rooms(
    booking_rules, clinic, service, therapist, make_room, at
):
    make_room("Only room", is_bookable=False)

    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(1))

    assert visit.room is None


@pytest.mark.django_db
def test_moving_a_visit_keeps_its_room_when_free_or_takes_another(
    roomed, make_therapist, make_room, at
):
    a, b = make_room("A"), make_room("B")
    maria, ana = make_therapist(), make_therapist()
    visit = book_appointment(service=roomed, therapist=maria, start=at(10), patient=someone(1))
    assert visit.room == a
    book_appointment(service=roomed, therapist=ana, start=at(14), patient=someone(2))  # room A

    moved = services.reschedule_appointment(appointment=visit, start=at(13, 30))

    assert (moved.starts_at, moved.room) == (at(13, 30), b)
    moved = services.reschedule_appointment(appointment=moved, start=at(9))
    assert moved.room == b  # B is free then: it stays


# --- staff booking by phone in the admin ---------------------------------------------
def admin_post(client, *, therapist, service, start, name, room=""):
    local = timezone.localtime(start)
    return client.post(
        "/admin/booking/appointment/add/",
        {
            "therapist": therapist.pk,
            "service": service.pk,
            "room": room,
            "starts_at_0": local.date().isoformat(),
            "starts_at_1": local.strftime("%H:%M:%S"),
            "status": "confirmed",
            "patient_name": name,
            "patient_email": "caller@example.com",
            "patient_phone": "+12095550142",
            "notes": "",
            "language": "en",
            "cancellation_reason": "",
        },
    )


@pytest.mark.django_db
def test_a_phone_booking_in_the_admin_takes_a_free_room_or_names_who_has_it(
    client, staff_user, roomed, make_therapist, make_room, at
):
    client.force_login(staff_user)
    room = make_room("Garden room")
    maria, ana = make_therapist("Maria"), make_therapist("Ana")
    book_appointment(service=roomed, therapist=maria, start=at(10), patient=someone(1))

    refused = admin_post(client, therapist=ana, service=roomed, start=at(10, 30), name="Caller")
    booked = admin_post(client, therapist=ana, service=roomed, start=at(13), name="Caller")

    assert refused.status_code == 200
    assert "Garden room is taken then: Patient 1 with Maria at" in refused.content.decode()
    assert booked.status_code == 302
    assert Appointment.objects.get(patient_name="Caller").room == room


@pytest.mark.django_db
def test_staff_choosing_a_taken_room_are_told_whose_visit_is_in_it(
    client, staff_user, roomed, make_therapist, make_room, at
):
    client.force_login(staff_user)
    garden, _ = make_room("Garden room"), make_room("Blue room")
    maria, ana = make_therapist("Maria"), make_therapist("Ana")
    book_appointment(service=roomed, therapist=maria, start=at(10), patient=someone(1))

    response = admin_post(
        client, therapist=ana, service=roomed, start=at(11), name="Caller", room=garden.pk
    )

    assert response.status_code == 200
    assert "Garden room is taken then: Patient 1 with Maria" in response.content.decode()
    assert "until 11:15 with the buffer" in response.content.decode()
    assert not Appointment.objects.filter(patient_name="Caller").exists()


# --- the database's guarantee and races ---------------------------------------------------
def raw_visit(therapist, service, start, room, **fields):
    """A visit written straight to the table, as a shell or a data fix would."""
    return raw_appointment(therapist, service, start, room=room, **fields)


@postgresql_only
@pytest.mark.django_db
def test_the_database_refuses_two_visits_in_one_room_at_once(roomed, make_therapist, make_room, at):
    room = make_room("Garden room")
    maria, ana = make_therapist(), make_therapist()
    raw_visit(maria, roomed, at(10), room)

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_visit(ana, roomed, at(11), room)  # inside the first one's buffer

    raw_visit(ana, roomed, at(11, 15), room)  # after it: let in
    assert Appointment.objects.count() == 2


@postgresql_only
@pytest.mark.django_db
def test_the_two_visits_of_a_couples_booking_share_their_room_and_no_one_else_does(
    booking_rules, clinic, make_therapist, make_room, at
):
    couples = Service.objects.create(
        name="Side by side", slug="side", duration_minutes=60, room_need="couples", for_two=True
    )
    room = make_room("Double", kind=Room.Kind.COUPLES)
    a, b, c = (make_therapist(services=[couples]) for _ in range(3))
    raw_visit(a, couples, at(10), room, pair=42)
    raw_visit(b, couples, at(10), room, pair=42)

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_visit(c, couples, at(10), room, pair=43)
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_visit(a, couples, at(10), make_room("Other"), pair=42)  # one therapist twice


@pytest.mark.django_db(transaction=True)
def test_thirty_patients_with_different_therapists_racing_for_the_last_room_book_once(
    booking_rules, clinic, service, make_therapist, make_room, at
):
    service.room_need = Service.RoomNeed.ANY
    service.save()
    make_room("The last room")
    therapists = [make_therapist() for _ in range(30)]

    def attempt(i):
        try:
            return book_appointment(
                service=service, therapist=therapists[i], start=at(10), patient=someone(i)
            )
        except services.SlotUnavailable:
            return "taken"

    results = race(attempt, count=30)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert results.count("taken") == 29
    assert Appointment.objects.count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_room_constraint_alone_stops_racing_inserts_that_skip_the_service(
    booking_rules, clinic, service, make_therapist, make_room, at
):
    room = make_room("The last room")
    therapists = [make_therapist() for _ in range(30)]

    def attempt(i):
        try:
            return raw_visit(therapists[i], service, at(10), room)
        except IntegrityError:
            return "refused"

    results = race(attempt, count=30)

    assert results.count("refused") == 29
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_staff_racing_phone_bookings_for_the_last_room_book_once_and_hear_why(
    booking_rules, clinic, service, make_therapist, make_room, at, staff_user
):
    service.room_need = Service.RoomNeed.ANY
    service.save()
    make_room("The last room")
    therapists = [make_therapist() for _ in range(10)]

    def attempt(i):
        client = Client()
        client.force_login(staff_user)
        return admin_post(
            client, therapist=therapists[i], service=service, start=at(10), name=f"Caller {i}"
        )

    responses = race(attempt, count=10)

    assert [r for r in responses if isinstance(r, Exception)] == []
    assert sorted(r.status_code for r in responses) == [200] * 9 + [302]
    refused = next(r for r in responses if r.status_code == 200)
    assert "The last room is taken then: Caller" in refused.content.decode()
    assert Appointment.objects.count() == 1


# --- the staff schedule's room view -------------------------------------------------------
@pytest.mark.django_db
def test_staff_see_each_rooms_visits_and_closures_beside_the_therapist_view(
    client, staff_user, roomed, make_therapist, make_room, at
):
    client.force_login(staff_user)
    make_room("Garden room")
    blue = make_room("Blue room")
    RoomClosure.objects.create(room=blue, starts_at=at(13), ends_at=at(15), reason="New floor")
    maria = make_therapist("Maria")
    book_appointment(service=roomed, therapist=maria, start=at(10), patient=someone(1))
    url = "/admin/booking/appointment/schedule/"
    day = at(10).date().isoformat()

    rooms = client.get(url, {"date": day, "by": "rooms"}).content.decode()
    therapists = client.get(url, {"date": day}).content.decode()

    garden_column = rooms[rooms.index('aria-label="Garden room') :]
    garden_column = garden_column[: garden_column.index("</section>")]
    assert "10:00–11:15" in garden_column and "Patient 1" in garden_column
    assert "with Maria" in garden_column
    blue_column = rooms[rooms.index('aria-label="Blue room') :]
    assert "Room closed: New floor" in blue_column[: blue_column.index("</section>")]
    assert "Garden room" in therapists and 'aria-label="Maria' in therapists
    assert 'href="?date=' in rooms and "by=therapists" in rooms


@pytest.mark.django_db
def test_a_waitlist_hold_keeps_its_room_from_other_therapists_patients(
    roomed, make_therapist, make_room, at
):
    from booking.models import WaitlistEntry

    room = make_room("The only room")
    maria, ana = make_therapist("Maria"), make_therapist("Ana")
    WaitlistEntry.objects.create(
        service=roomed,
        first_day=at(10).date(),
        last_day=at(10).date(),
        morning=True,
        name="Waiting",
        email="w@example.com",
        joined_at=timezone.now() - timedelta(days=1),
    )
    visit = book_appointment(service=roomed, therapist=maria, start=at(10), patient=someone(1))
    services.cancel_appointment(appointment=visit)

    hold = services.offer_freed_time(therapist_id=maria.pk, start=at(10))

    assert hold.room == room
    assert at(10) not in Availability(service=roomed, therapists=[ana]).times_on(at(10).date())
    with pytest.raises(services.SlotUnavailable):
        book_appointment(service=roomed, therapist=ana, start=at(10), patient=someone(2))
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic():
            raw_visit(ana, roomed, at(10, 30), room)


def test_a_room_busy_through_the_repeated_hour_of_fall_back_blocks_real_time():
    fall_back = date(2027, 11, 7)  # a Sunday: 01:00-02:00 happens twice
    first_one = datetime(2027, 11, 7, 1, 0, tzinfo=TZ)  # the first 01:00 (PDT)
    # Two real hours (aware arithmetic in one zone would add wall-clock hours): to 02:00 PST.
    busy = slots.RoomBusy(7, [(first_one, first_one.astimezone(UTC) + 2 * HOUR)])
    early = {6: [(time(0), time(4))]}
    free = slots.free_starts(
        therapists=[slots.TherapistHours(1, early)],
        closures=[],
        duration=HOUR,
        buffer=timedelta(0),
        rules=slots.Rules(step=HOUR, min_notice=HOUR, max_days_ahead=60),
        first_day=fall_back,
        last_day=fall_back,
        tz=TZ,
        now=datetime(2027, 11, 1, tzinfo=TZ),
        rooms=[busy],
    )
    # Five real hours from 00:00 to 04:00; the room is busy for the two after the first 01:00.
    assert [s.astimezone(TZ).strftime("%H:%M %Z") for s in free[1]] == [
        "00:00 PDT",
        "02:00 PST",
        "03:00 PST",
    ]


@pytest.mark.django_db
def test_staff_closing_a_room_over_booked_visits_are_told_which_to_move(
    client, staff_user, roomed, therapist, make_room, at
):
    client.force_login(staff_user)
    room = make_room("Garden room")
    book_appointment(service=roomed, therapist=therapist, start=at(10), patient=someone(1))
    start, end = timezone.localtime(at(9)), timezone.localtime(at(14))

    response = client.post(
        f"/admin/booking/room/{room.pk}/change/",
        {
            "name": "Garden room",
            "kind": "single",
            "is_bookable": "on",
            "display_order": "0",
            "closures-TOTAL_FORMS": "1",
            "closures-INITIAL_FORMS": "0",
            "closures-MIN_NUM_FORMS": "0",
            "closures-MAX_NUM_FORMS": "1000",
            "closures-0-starts_at_0": start.date().isoformat(),
            "closures-0-starts_at_1": start.strftime("%H:%M:%S"),
            "closures-0-ends_at_0": end.date().isoformat(),
            "closures-0-ends_at_1": end.strftime("%H:%M:%S"),
            "closures-0-reason": "Leak",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert RoomClosure.objects.get(room=room).reason == "Leak"
    assert "Garden room is closed during Patient 1" in response.content.decode()
    times = Availability(service=roomed, therapists=[therapist]).times_on(at(10).date())
    assert at(13) not in times and at(14) in times
