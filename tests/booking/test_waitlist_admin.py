"""Staff changes made through the admin's own forms free time for the waitlist: the forms are
read from the page and posted back as a browser would, then the freed time is offered."""

from html.parser import HTMLParser

import pytest

from booking import services
from booking.models import Appointment, Hold, TimeOff, Vacancy
from booking.services import book_appointment
from clinic.models import OutgoingEmail
from tests.booking.test_waitlist_offers import join, someone

pytestmark = pytest.mark.django_db
OFFER = "A time is free for you"


class FormReader(HTMLParser):
    """The values a browser would send for the page's main form, as {name: [values]}."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "file", "button"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            # As a browser sends them: a checked box without a value is "on", an empty field "".
            checkable = attrs.get("type") in ("checkbox", "radio")
            self.data.setdefault(name, []).append(attrs.get("value", "on" if checkable else ""))
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.data[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data


def change_form(client, url):
    response = client.get(url)
    assert response.status_code == 200
    reader = FormReader()
    reader.feed(response.content.decode())
    return reader.data


def post(client, url, data):
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


@pytest.fixture(autouse=True)
def _schedule(booking_rules, clinic, therapist):
    return therapist


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def offer_what_was_freed():
    """What the task does after commit (the beat, if it never ran): offer pending vacancies."""
    for vacancy in Vacancy.objects.pending():
        services.offer_vacancy(vacancy_id=vacancy.pk)
    return {hold.entry.email: hold.starts_at for hold in Hold.objects.active()}


def offered(entry):
    return OutgoingEmail.objects.filter(to=[entry.email], subject__startswith=OFFER).count()


def test_deleting_time_off_on_the_therapist_page_offers_the_time(staff, service, therapist, at):
    waiting = join(service, at(13).date(), n=1, parts=("afternoon",))
    TimeOff.objects.create(therapist=therapist, starts_at=at(13), ends_at=at(17), reason="Dentist")
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    assert offer_what_was_freed() == {}  # away: nothing to offer yet

    data = change_form(staff, url)
    assert data["time_off-TOTAL_FORMS"] == ["1"]
    data["time_off-0-DELETE"] = ["on"]
    post(staff, url, data)

    assert not TimeOff.objects.exists()
    (vacancy,) = Vacancy.objects.all()
    assert (vacancy.starts_at, vacancy.ends_at) == (at(13), at(17))
    assert offer_what_was_freed() == {waiting.email: at(13)}
    assert offered(waiting) == 1


def set_time_off(data, row, starts, ends):
    """Type new times into the therapist page's time off row `row`, as staff would."""
    for field, when in (("starts_at", starts), ("ends_at", ends)):
        data[f"time_off-{row}-{field}_0"] = [when.date().isoformat()]
        data[f"time_off-{row}-{field}_1"] = [when.strftime("%H:%M:%S")]


def test_shortening_time_off_on_the_therapist_page_offers_the_freed_start(
    staff, service, therapist, at
):
    waiting = join(service, at(9).date(), n=1)
    TimeOff.objects.create(therapist=therapist, starts_at=at(8), ends_at=at(18), reason="Course")
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    set_time_off(data, 0, at(12), at(18))  # back for the afternoon only

    post(staff, url, data)

    assert TimeOff.objects.get().starts_at == at(12)
    (vacancy,) = Vacancy.objects.all()
    assert (vacancy.starts_at, vacancy.ends_at) == (at(8), at(12))
    # 08:00 is before her hours: the first time the engine finds free is 09:00.
    assert offer_what_was_freed() == {waiting.email: at(9)}
    assert offered(waiting) == 1


def test_moving_time_off_to_another_day_offers_the_old_days_time(staff, service, therapist, at):
    monday = join(service, at(13).date(), n=1, parts=("afternoon",))
    tuesday = join(service, at(13, days=1).date(), n=2, parts=("afternoon",))
    TimeOff.objects.create(therapist=therapist, starts_at=at(13), ends_at=at(17), reason="Dentist")
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    set_time_off(data, 0, at(13, days=1), at(17, days=1))

    post(staff, url, data)

    assert TimeOff.objects.get().starts_at == at(13, days=1)
    assert offer_what_was_freed() == {monday.email: at(13)}
    assert offered(monday) == 1 and offered(tuesday) == 0


def test_lengthening_time_off_offers_nothing_until_the_added_time_is_given_back(
    staff, service, therapist, at
):
    waiting = join(service, at(13).date(), n=1, parts=("afternoon",))
    TimeOff.objects.create(therapist=therapist, starts_at=at(13), ends_at=at(15), reason="Dentist")
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    set_time_off(data, 0, at(13), at(17))  # the dentist runs late

    post(staff, url, data)

    assert TimeOff.objects.get().ends_at == at(17)
    assert not Vacancy.objects.exists()
    assert offer_what_was_freed() == {}
    assert offered(waiting) == 0

    data = change_form(staff, url)
    set_time_off(data, 0, at(13), at(15))  # a mistake: back at three after all
    post(staff, url, data)

    assert offer_what_was_freed() == {waiting.email: at(15)}


def test_time_off_changed_and_deleted_in_one_post_offers_the_time_it_had(
    staff, service, therapist, at
):
    waiting = join(service, at(13).date(), n=1, parts=("afternoon",))
    TimeOff.objects.create(therapist=therapist, starts_at=at(13), ends_at=at(17), reason="Dentist")
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    set_time_off(data, 0, at(16), at(17))
    data["time_off-0-DELETE"] = ["on"]

    post(staff, url, data)

    assert not TimeOff.objects.exists()
    assert offer_what_was_freed() == {waiting.email: at(13)}


def test_adding_working_hours_on_the_therapist_page_offers_the_new_time(
    staff, service, therapist, at
):
    waiting = join(service, at(17).date(), n=1, parts=("evening",))
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    rows = int(data["working_hours-TOTAL_FORMS"][0])
    new = f"working_hours-{rows}-"
    data["working_hours-TOTAL_FORMS"] = [str(rows + 1)]
    data[new + "weekday"] = [str(at(17).weekday())]
    data[new + "opens"] = ["17:00"]
    data[new + "closes"] = ["20:00"]
    data[new + "therapist"] = [str(therapist.pk)]
    post(staff, url, data)

    assert therapist.working_hours.count() == rows + 1
    assert at(17) in {v.starts_at for v in Vacancy.objects.all()}
    assert offer_what_was_freed() == {waiting.email: at(17)}
    assert offered(waiting) == 1


def test_deleting_an_appointment_on_its_admin_page_offers_its_time(staff, service, therapist, at):
    waiting = join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))

    post(staff, f"/admin/booking/appointment/{visit.pk}/delete/", {"post": "yes"})

    assert not Appointment.objects.exists()
    assert offer_what_was_freed() == {waiting.email: at(10)}


def test_deleting_appointments_from_the_list_offers_each_time(staff, service, therapist, at):
    morning = join(service, at(10).date(), n=1)
    afternoon = join(service, at(14).date(), n=2, parts=("afternoon",))
    visits = [
        book_appointment(service=service, therapist=therapist, start=at(h), patient=someone(h))
        for h in (10, 14)
    ]
    selected = {"action": "delete_selected", "_selected_action": [v.pk for v in visits]}

    post(staff, "/admin/booking/appointment/", {**selected, "post": "yes"})

    assert not Appointment.objects.exists()
    assert offer_what_was_freed() == {morning.email: at(10), afternoon.email: at(14)}


def test_cancelling_on_the_appointment_page_offers_its_time(staff, service, therapist, at):
    waiting = join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    url = f"/admin/booking/appointment/{visit.pk}/change/"
    data = change_form(staff, url)
    data["status"] = [Appointment.Status.CANCELLED]

    post(staff, url, data)

    assert Appointment.objects.get().status == Appointment.Status.CANCELLED
    assert offer_what_was_freed() == {waiting.email: at(10)}


def test_moving_on_the_appointment_page_offers_the_old_time(staff, service, therapist, at):
    waiting = join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    url = f"/admin/booking/appointment/{visit.pk}/change/"
    data = change_form(staff, url)
    moved = at(15)
    data["starts_at_0"] = [moved.date().isoformat()]
    data["starts_at_1"] = [moved.strftime("%H:%M:%S")]

    post(staff, url, data)

    assert Appointment.objects.get().starts_at == moved
    assert offer_what_was_freed() == {waiting.email: at(10)}


def test_the_cancel_action_offers_each_cancelled_time(staff, service, therapist, at):
    waiting = join(service, at(10).date(), n=1)
    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    chosen = {"action": "cancel_selected", "_selected_action": [visit.pk]}

    response = staff.post("/admin/booking/appointment/", chosen)
    assert response.status_code == 200  # asks why first
    assert not Vacancy.objects.exists()
    post(staff, "/admin/booking/appointment/", {**chosen, "confirm_cancel": "1", "reason": "Ill"})

    assert Appointment.objects.get().status == Appointment.Status.CANCELLED
    assert offer_what_was_freed() == {waiting.email: at(10)}


def test_staff_see_who_waits_for_a_day_and_the_times_the_waitlist_filled(
    staff, service, therapist, at
):
    monday, tuesday, wednesday = (at(10, days=n).date() for n in range(3))
    week = join(service, monday, n=1)
    week.last_day = wednesday
    week.save()
    only_tuesday = join(service, monday, n=2)
    only_tuesday.last_day, only_tuesday.days = wednesday, [tuesday.isoformat()]
    only_tuesday.save()
    join(service, monday, n=3)  # Monday only

    def listed(**query):
        page = staff.get("/admin/booking/waitlistentry/", query)
        assert page.status_code == 200
        return {e.name for e in page.context["cl"].result_list}, page.content.decode()

    everyone, page = listed()
    assert everyone == {"Waiting 1", "Waiting 2", "Waiting 3"}
    assert f"{tuesday:%a %-d %b}" in page and "every day" in page
    assert "Freed times filled from the waitlist: 0 in the last 30 days, 0 in all." in page
    assert listed(day=monday.isoformat())[0] == {"Waiting 1", "Waiting 3"}
    assert listed(day=tuesday.isoformat())[0] == {"Waiting 1", "Waiting 2"}
    assert listed(day=wednesday.isoformat())[0] == {"Waiting 1"}
    assert listed(day="not-a-day")[0] == everyone

    visit = book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    services.cancel_appointment(appointment=visit)
    hold = services.offer_freed_time(therapist_id=therapist.pk, start=at(10))
    assert hold.entry.name == "Waiting 1"
    book_appointment(
        service=service, therapist=therapist, start=at(10), patient=someone(1), hold=hold
    )
    assert "Freed times filled from the waitlist: 1 in the last 30 days, 1 in all." in listed()[1]


def test_time_off_added_over_a_booked_visit_warns_staff_and_names_the_visit(
    staff, service, therapist, at
):
    book_appointment(service=service, therapist=therapist, start=at(10), patient=someone(0))
    url = f"/admin/booking/therapist/{therapist.pk}/change/"
    data = change_form(staff, url)
    row = int(data["time_off-TOTAL_FORMS"][0])
    data["time_off-TOTAL_FORMS"] = [str(row + 1)]
    set_time_off(data, row, at(9), at(12))
    data[f"time_off-{row}-reason"] = ["Course"]
    data[f"time_off-{row}-therapist"] = [str(therapist.pk)]

    response = post(staff, url, data)

    assert TimeOff.objects.filter(therapist=therapist, starts_at=at(9)).exists()
    page = staff.get(response["Location"]).content.decode()
    assert f"{therapist.name} is off during Patient 0&#x27;s visit at" in page
    assert "10:00" in page.split("is off during")[1]
