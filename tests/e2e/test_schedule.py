"""Staff sign in, read the week's schedule across therapists and open an appointment from it."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from booking.health import sign_health_history
from booking.models import Appointment, ConsentText, TimeOff
from booking.services import PatientDetails, book_appointment
from clinic.patients import prove_email
from tests.e2e.conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_read_the_week_schedule_and_open_an_appointment(
    page, check_page, live_server, seeded, staff_user, booking_rules, service, make_therapist, at
):
    maria, omar = make_therapist("Noor Ahmed"), make_therapist("Omar Haddad")
    visits = {}
    for days, hour, who, name, intake in [
        (0, 9, maria, "Kim Alvarez", {"intake_clot_signs": True}),
        (0, 13, omar, "Lee Brown", {}),
        (1, 10, maria, "Ana Chen", {"intake_pregnant": False}),
        (2, 14, omar, "Sam Diaz", {"intake_blood_thinners": True}),
    ]:
        visits[name] = book_appointment(
            service=service,
            therapist=who,
            start=at(hour, days=days),
            patient=PatientDetails(
                name=name, email="p@example.com", phone="+12095550142", intake=intake
            ),
        )
    TimeOff.objects.create(
        therapist=omar, starts_at=at(9, days=3), ends_at=at(12, days=3), reason="Dentist"
    )
    # Lee's history was signed from the confirmation page, before anyone proved the address.
    sign_health_history(
        patient=visits["Lee Brown"].patient,
        answers={
            "conditions": "",
            "medications": "",
            "areas_to_avoid": "",
            "pressure": "medium",
            "emergency_name": "Robin Brown",
            "emergency_phone": "(209) 555-0199",
            **dict.fromkeys(Appointment.INTAKE_FIELDS, False),
        },
        signed_name="Lee Brown",
        consent_version=ConsentText.current().version,
        language="en",
        emailed=False,
    )
    prove_email(patient=visits["Lee Brown"].patient)
    monday = at(9).date()

    page.goto(live_server.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("staffer")
    page.get_by_label("Password").fill("a-long-staff-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Appointments and free time, by day or week").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Schedule: all therapists")

    page.get_by_label("Date", exact=True).fill(monday.isoformat())
    page.get_by_label("Show").select_option("week")
    page.get_by_role("button", name="Go to date").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("week of")
    week_end = monday + timedelta(days=6)
    expect(
        page.get_by_role("heading", name=f"{week_end:%A} {week_end.day} {week_end:%B %Y}")
    ).to_be_visible()
    expect(page.get_by_text("Check intake")).to_have_count(2)
    expect(page.get_by_text("History unconfirmed")).to_have_count(1)
    expect(page.get_by_text("Time off: Dentist")).to_be_visible()
    check_page("admin-schedule-week")

    # The same week by room: each visit in the room the booking gave it.
    page.get_by_role("link", name="By room").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Schedule: rooms")
    expect(page.get_by_role("heading", name="Treatment room (single)")).to_have_count(7)
    expect(page.get_by_text("Kim Alvarez")).to_be_visible()
    check_page("admin-schedule-rooms-week")
    page.get_by_role("link", name="By therapist").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Schedule: all therapists")

    # On paper only the schedule: no admin header, breadcrumbs or controls.
    page.emulate_media(media="print")
    expect(page.locator("#header")).to_be_hidden()
    expect(page.get_by_role("button", name="Go to date")).to_be_hidden()
    expect(page.get_by_text("Kim Alvarez")).to_be_visible()
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.screenshot(path=str(SCREENSHOTS / "admin-schedule-week-print.png"), full_page=True)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Kim Alvarez").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change appointment")
    expect(
        page.get_by_text("New calf swelling, warmth, redness or pain at rest: Yes")
    ).to_be_visible()
    check_page("admin-appointment-from-schedule")
