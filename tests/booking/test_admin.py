"""Staff run appointments in the admin: flags, actions, cancelling with a reason, the schedule."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from booking.models import Appointment, TimeOff
from booking.services import PatientDetails, book_appointment
from clinic.models import Closure, OutgoingEmail

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/booking/appointment/"
SCHEDULE = "/admin/booking/appointment/schedule/"


@pytest.fixture
def staff(client, staff_user, clinic, booking_rules):
    client.force_login(staff_user)
    return client


@pytest.fixture
def book(service, therapist, at):
    """book(hour, days=0, name=..., intake=..., therapist=...): a confirmed appointment."""

    def make(hour, minute=0, days=0, name="Pat Example", intake=None, **kwargs):
        return book_appointment(
            service=service,
            therapist=kwargs.pop("with_therapist", therapist),
            start=at(hour, minute, days=days),
            patient=PatientDetails(
                name=name,
                email=f"{name.split()[0].lower()}@example.com",
                phone="+12095550142",
                intake=intake or {},
            ),
            **kwargs,
        )

    return make


def act(client, action, appointments, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [a.pk for a in appointments], **extra},
    )


def messages_of(response):
    return [str(m) for m in response.wsgi_request._messages]


# --- the list and the change form --------------------------------------------------------


def test_the_list_flags_appointments_whose_intake_has_a_yes_in_words(staff, book):
    book(9, name="Kim Clot", intake={"intake_clot_signs": True})
    book(14, name="Lee Fine", intake={"intake_clot_signs": False})
    page = staff.get(CHANGELIST).content.decode()
    rows = {line for line in page.split("<tr") if "Clot" in line or "Fine" in line}
    assert any("Kim Clot" in row and "Check intake" in row for row in rows)
    assert not any("Lee Fine" in row and "Check intake" in row for row in rows)


def test_the_needs_clearance_filter_keeps_only_appointments_with_a_yes(staff, book):
    book(9, name="Kim Clot", intake={"intake_pregnant": True})
    book(14, name="Lee Fine")
    page = staff.get(CHANGELIST, {"clearance": "yes"}).content.decode()
    assert "Kim Clot" in page and "Lee Fine" not in page
    page = staff.get(CHANGELIST, {"clearance": "no"}).content.decode()
    assert "Lee Fine" in page and "Kim Clot" not in page


def test_the_change_form_shows_intake_answers_read_only_and_the_source_article(
    staff, book, make_article
):
    article = make_article(title="Calf pain after a flight")
    appointment = book(
        9,
        name="Kim Clot",
        intake={"intake_clot_signs": True, "intake_blood_thinners": False},
        source_article=article,
    )
    page = staff.get(reverse("admin:booking_appointment_change", args=[appointment.pk]))
    html = page.content.decode()
    assert "Check intake" in html
    assert "New calf swelling, warmth, redness or pain at rest: <strong>Yes</strong>" in html
    assert "Takes blood thinners: <strong>No</strong>" in html
    assert "Pregnant: <strong>Not asked</strong>" in html
    assert 'name="intake_' not in html and 'name="source_article"' not in html
    assert "Calf pain after a flight" in html


def test_the_list_links_to_the_schedule(staff):
    assert f'href="{SCHEDULE}"' in staff.get(CHANGELIST).content.decode()


# --- actions -----------------------------------------------------------------------------


def test_marking_completed_changes_only_confirmed_appointments_that_have_begun(staff, book, at):
    done, later = book(9), book(14)
    cancelled = book(10, days=1, name="Sam Gone")
    Appointment.objects.filter(pk=cancelled.pk).update(
        status=Appointment.Status.CANCELLED, cancelled_at=at(8)
    )
    with time_machine.travel(at(11), tick=False):
        response = act(staff, "mark_completed", [done, later, cancelled])
    assert response.status_code == 302
    statuses = dict(Appointment.objects.values_list("pk", "status"))
    assert statuses == {done.pk: "completed", later.pk: "confirmed", cancelled.pk: "cancelled"}
    assert messages_of(staff.get(CHANGELIST)) == [
        "1 appointment(s) marked as completed. 2 left as they were: only confirmed"
        " appointments that have begun can be marked."
    ]


def test_marking_a_no_show_says_how_many_changed(staff, book, at):
    first, second = book(9), book(14)
    with time_machine.travel(at(16), tick=False):
        act(staff, "mark_no_show", [first, second])
    assert set(Appointment.objects.values_list("status", flat=True)) == {"no_show"}
    assert messages_of(staff.get(CHANGELIST)) == ["2 appointment(s) marked as no-show."]


def test_cancelling_asks_for_a_reason_on_its_own_page_before_anything_changes(staff, book):
    appointment = book(9)
    response = act(staff, "cancel_selected", [appointment])
    assert response.status_code == 200
    assert "Cancel appointments" in response.content.decode()
    assert 'name="reason"' in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED
    assert not OutgoingEmail.objects.filter(subject__startswith="Cancelled").exists()


def test_cancelling_with_a_reason_cancels_each_and_emails_the_patient(staff, book):
    first, second = book(9, name="Pat Example"), book(14, name="Ray Other")
    response = act(
        staff,
        "cancel_selected",
        [first, second],
        confirm_cancel="yes",
        reason="Your therapist is ill today.",
    )
    assert response.status_code == 302
    for appointment in (first, second):
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.CANCELLED
        assert appointment.cancellation_reason == "Your therapist is ill today."
    to_patient = OutgoingEmail.objects.filter(
        to=["pat@example.com"], subject__startswith="Cancelled"
    )
    assert to_patient.count() == 1
    assert "Your therapist is ill today." in to_patient.get().body_text
    assert messages_of(staff.get(CHANGELIST)) == [
        "2 appointment(s) cancelled; each patient was emailed."
    ]


def test_cancelling_without_a_reason_asks_again_and_cancels_nothing(staff, book):
    appointment = book(9)
    response = act(staff, "cancel_selected", [appointment], confirm_cancel="yes", reason="  ")
    assert response.status_code == 200
    assert "Say why: the patient is told the reason." in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CONFIRMED


def test_cancelling_leaves_appointments_that_are_not_confirmed_alone(staff, book, at):
    confirmed, completed = book(9), book(14)
    Appointment.objects.filter(pk=completed.pk).update(status=Appointment.Status.COMPLETED)
    act(staff, "cancel_selected", [confirmed, completed], confirm_cancel="yes", reason="Closed")
    assert dict(Appointment.objects.values_list("pk", "status")) == {
        confirmed.pk: "cancelled",
        completed.pk: "completed",
    }
    assert messages_of(staff.get(CHANGELIST)) == [
        "1 appointment(s) cancelled; each patient was emailed. 1 not confirmed, left as they were."
    ]


# --- the schedule ------------------------------------------------------------------------


def test_the_day_schedule_shows_appointments_linked_and_the_free_time_between(
    staff, book, next_monday
):
    appointment = book(10, name="Kim Clot", intake={"intake_clot_signs": True})
    page = staff.get(SCHEDULE, {"date": next_monday.isoformat(), "view": "day"})
    html = page.content.decode()
    assert page.status_code == 200
    assert reverse("admin:booking_appointment_change", args=[appointment.pk]) in html
    assert "10:00–11:00</span> Kim Clot" in html
    assert "60-minute massage &middot; Confirmed &middot; then 15 min buffer" in html
    assert "Check intake" in html
    # 09:00–17:00 with lunch 12–13, minus 10:00–11:15 (the buffer included).
    for free in ("09:00–10:00</span> Free (1 h)", "11:15–12:00</span> Free (45 min)"):
        assert free in html
    assert "13:00–17:00</span> Free (4 h)" in html
    assert 'class="breadcrumbs"' in html


def test_the_week_schedule_shows_monday_to_sunday_with_time_off_and_closures(
    staff, book, therapist, clinic, at, next_monday
):
    book(9, days=1, name="Tue Patient")
    TimeOff.objects.create(
        therapist=therapist, starts_at=at(13, days=2), ends_at=at(17, days=2), reason="Training"
    )
    thursday = next_monday + timedelta(days=3)
    Closure.objects.create(clinic=clinic, starts_on=thursday, ends_on=thursday, reason="Holiday")
    html = staff.get(
        SCHEDULE, {"date": (next_monday + timedelta(days=2)).isoformat(), "view": "week"}
    ).content.decode()
    for n in range(7):
        assert f'id="day-{(next_monday + timedelta(days=n)).isoformat()}"' in html
    assert "Tue Patient" in html
    assert "13:00–17:00</span> Time off: Training" in html
    assert "<strong>Clinic closed</strong>: Holiday" in html
    assert html.count("Nobody works this day.") == 2  # Saturday and Sunday


def test_the_schedule_moves_by_a_day_or_a_week_and_back_to_today(staff, next_monday):
    day = staff.get(SCHEDULE, {"date": next_monday.isoformat(), "view": "day"})
    links = day.context["links"]
    assert f"date={(next_monday - timedelta(days=1)).isoformat()}" in links["previous"]
    assert f"date={(next_monday + timedelta(days=1)).isoformat()}" in links["next"]
    week = staff.get(SCHEDULE, {"date": next_monday.isoformat(), "view": "week"})
    assert f"date={(next_monday + timedelta(days=7)).isoformat()}" in week.context["links"]["next"]
    assert "view=week" in week.context["links"]["next"]
    assert week.context["links"]["today"].startswith("?date=" + str(week.context["today"]))


def test_a_wrong_date_shows_today_with_a_note(staff):
    page = staff.get(SCHEDULE, {"date": "not-a-date"})
    assert page.status_code == 200
    assert page.context["day"] == page.context["today"]
    assert "Enter a valid date." in page.content.decode()


def test_a_staff_user_linked_to_a_therapist_sees_their_own_schedule_first(
    client, django_user_model, clinic, booking_rules, make_therapist, book, next_monday
):
    user = django_user_model.objects.create_user(
        username="nadia", password="a-long-staff-password", is_staff=True, is_superuser=True
    )
    nadia = make_therapist("Nadia Own", user=user)
    make_therapist("Omar Other")
    book(10, name="Her Patient", with_therapist=nadia)
    client.force_login(user)

    own = client.get(SCHEDULE, {"date": next_monday.isoformat()})
    assert own.context["chosen"] == nadia
    assert [column.therapist for column in own.context["days"][0].columns] == [nadia]
    assert "Her Patient" in own.content.decode()

    everyone = client.get(SCHEDULE, {"date": next_monday.isoformat(), "therapist": ""})
    assert everyone.context["chosen"] is None
    everyone_shown = {column.therapist.name for column in everyone.context["days"][0].columns}
    assert {"Nadia Own", "Omar Other"} <= everyone_shown


def test_people_who_are_not_staff_are_sent_to_log_in(client, django_user_model, clinic):
    assert client.get(SCHEDULE).url.startswith("/admin/login/")
    patient = django_user_model.objects.create_user(username="pat", password="pw-pw-pw-pw-pw")
    client.force_login(patient)
    assert client.get(SCHEDULE).url.startswith("/admin/login/")


def test_the_schedule_costs_the_same_queries_for_a_week_of_many_therapists_as_a_day_of_one(
    staff, service, make_therapist, therapist, at, next_monday
):
    def queries(**params):
        staff.get(SCHEDULE, params)  # warms the clinic profile's cache
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(SCHEDULE, params).status_code == 200
        return len(captured)

    one_day = queries(date=next_monday.isoformat(), view="day", therapist=therapist.pk)
    for n in range(5):
        someone = make_therapist()
        for day in range(7):
            if day < 5:
                book_appointment(
                    service=service,
                    therapist=someone,
                    start=at((9, 10, 13, 14, 15)[n], days=day),
                    patient=PatientDetails(
                        name=f"P{n}", email="p@example.com", phone="+12095550142"
                    ),
                )
            TimeOff.objects.create(
                therapist=someone, starts_at=at(16, days=day), ends_at=at(17, days=day)
            )
    assert queries(date=next_monday.isoformat(), view="week", therapist="") == one_day
