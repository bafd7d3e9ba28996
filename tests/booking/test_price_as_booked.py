"""The price a patient booked at is the price they are told afterwards, whatever staff later
set as the treatment's price: confirmation and manage pages, reminder, calendar file."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from icalendar import Calendar

from booking import links, services
from booking.models import Appointment, Service
from booking.reminders import send_due_reminders
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(booking_rules, clinic, service, therapist, patient, at):
    Service.objects.filter(pk=service.pk).update(price=Decimal("90"))
    service.refresh_from_db()
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, now=at(9, days=-3)
    )
    # Staff raise the price afterwards.
    service.price = Decimal("110")
    service.save()
    return Appointment.objects.get(pk=appointment.pk)


def test_the_confirmation_and_manage_pages_say_the_price_it_was_booked_at(client, booked):
    for url in (links.confirmation_url(booked), links.manage_url(booked)):
        page = client.get(urlsplit(url).path).content.decode()
        assert "$90" in page and "$110" not in page


def test_the_reminder_and_calendar_file_say_the_price_it_was_booked_at(client, booked):
    assert send_due_reminders(now=booked.starts_at - timedelta(hours=23)) == 1
    reminder = OutgoingEmail.objects.get(idempotency_key__startswith="booking:reminder:")
    assert "$90" in reminder.body_text and "$110" not in reminder.body_text
    assert "$90" in reminder.body_html
    ics = client.get(urlsplit(links.confirmation_url(booked)).path + "appointment.ics").content
    description = str(Calendar.from_ical(ics).walk("VEVENT")[0]["description"])
    assert "$90" in description and "$110" not in description


def test_a_new_booking_and_a_visit_made_by_staff_take_the_price_of_the_day(
    booked, service, therapist, patient, at
):
    later = services.book_appointment(
        service=service, therapist=therapist, start=at(14), patient=patient, now=at(9, days=-3)
    )
    assert later.price == Decimal("110")
    phoned = Appointment.objects.create(
        therapist=therapist,
        service=service,
        starts_at=at(16),
        ends_at=at(17),
        blocked_until=at(17, 15),
        patient_name="By Phone",
        patient_email="phone@example.com",
        patient_phone="+12095550177",
        consented_to_policy_at=at(9),
    )
    assert phoned.price == Decimal("110")


def test_staff_changing_a_visits_treatment_charge_the_new_treatments_price_unless_they_type_one(
    client, staff_user, booked, service
):
    from tests.booking.test_waitlist_admin import change_form

    longer = Service.objects.create(
        slug="massage-90", name="90-minute massage", duration_minutes=90, price=Decimal("130")
    )
    booked.therapist.services.add(longer)
    client.force_login(staff_user)
    url = f"/admin/booking/appointment/{booked.pk}/change/"
    data = change_form(client, url)
    data["service"] = [str(longer.pk)]
    assert client.post(url, data).status_code == 302
    booked.refresh_from_db()
    assert (booked.service, booked.price) == (longer, Decimal("130"))

    data = change_form(client, url)
    data["service"], data["price"] = [str(service.pk)], ["75"]  # a discount, typed
    assert client.post(url, data).status_code == 302
    booked.refresh_from_db()
    assert (booked.service, booked.price) == (service, Decimal("75"))
