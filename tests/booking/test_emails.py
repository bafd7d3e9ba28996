"""What the patient's emails say: the visit with its price, what to know before coming, how
to change it, and headers and HTML that mail apps read correctly, in English and Spanish."""

import email
from datetime import timedelta
from email import policy
from html.parser import HTMLParser

import pytest
from django.utils import dateformat, translation

from booking import reminders, services
from clinic.mail import _message
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _priced(booking_rules, clinic, service):
    service.price = "92.50"
    service.save()


def patient_emails(patient):
    return list(OutgoingEmail.objects.filter(to=[patient.email]).order_by("created_at", "pk"))


def every_patient_email(service, therapist, patient, at, language="en"):
    """Booked, reminded, moved and cancelled: one of each email a patient can get."""
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, language=language
    )
    assert reminders.send_due_reminders(now=appointment.starts_at - timedelta(hours=23)) == 1
    services.reschedule_appointment(appointment=appointment, start=at(14), now=at(9, days=-3))
    services.cancel_appointment(appointment=appointment, now=at(9, days=-3))
    rows = patient_emails(patient)
    kinds = ["booking/confirmation", "reminder", "moved", "cancelled"]
    assert len(rows) == len(kinds), [row.subject for row in rows]
    return appointment, rows


class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.title, self.lang, self._in_title = None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title = (self.title or "") + data


def parsed(html):
    parser = _Html()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("language", "minutes"), [("en", "60 minutes"), ("es", "60 minutos")])
def test_every_patient_email_gives_treatment_duration_and_price(
    service, therapist, patient, at, language, minutes
):
    _appointment, rows = every_patient_email(service, therapist, patient, at, language)
    for row in rows:
        for body in (row.body_text, row.body_html):
            assert service.name in body, row.subject
            assert minutes in body, row.subject
            assert "$92.50" in body, row.subject


def test_a_treatment_without_a_price_shows_no_price_line(service, therapist, patient, at):
    service.price = None
    service.save()
    services.book_appointment(service=service, therapist=therapist, start=at(10), patient=patient)
    (row,) = patient_emails(patient)
    assert "Price" not in row.body_text and "$" not in row.body_text


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_html_email_has_its_subject_as_title_and_the_readers_language(
    service, therapist, patient, at, language
):
    _appointment, rows = every_patient_email(service, therapist, patient, at, language)
    for row in rows:
        html = parsed(row.body_html)
        assert html.title == row.subject
        assert html.lang == language


@pytest.mark.parametrize("language", ["en", "es"])
def test_subjects_decode_without_a_leading_space(service, therapist, patient, at, language):
    _appointment, rows = every_patient_email(service, therapist, patient, at, language)
    for row in rows:
        raw = _message(row).message().as_bytes(linesep="\r\n")
        subject = email.message_from_bytes(raw, policy=policy.default)["Subject"]
        assert subject == row.subject
        assert not subject[0].isspace()


def test_spanish_subjects_and_dates_read_in_lower_case_mid_sentence(
    service, therapist, patient, at
):
    _appointment, rows = every_patient_email(service, therapist, patient, at, "es")
    with translation.override("es"):
        weekday = dateformat.format(at(10), "l")  # "lunes", as our catalog writes it
        month = dateformat.format(at(10), "b")  # "dic"
    assert weekday == weekday.lower()
    for row in rows:
        # "lun 14 de dic", not "lun 14 Dic": no capital inside the subject's date.
        date_part = row.subject.split("·")[0].split(" ", 1)[1]
        assert date_part == date_part.lower(), row.subject
        assert f"de {month}," in row.subject


def test_the_confirmation_and_the_reminder_say_what_to_know_before_the_visit(
    service, therapist, patient, at, clinic
):
    clinic.before_visit = "Park behind the bakery; the side door has a ramp."
    clinic.before_visit_es = "Estacione detrás de la panadería; la puerta lateral tiene rampa."
    clinic.save()
    from clinic.services import forget_clinic_profile

    forget_clinic_profile()
    _appointment, (booked, reminder, moved, cancelled) = every_patient_email(
        service, therapist, patient, at
    )
    for row in (booked, reminder):
        assert "Before your visit" in row.body_text and "Before your visit" in row.body_html
        assert clinic.before_visit in row.body_text and clinic.before_visit in row.body_html
    assert clinic.before_visit not in cancelled.body_text


def test_before_your_visit_goes_out_in_spanish_to_a_spanish_patient(
    service, therapist, patient, at, clinic
):
    clinic.refresh_from_db()
    services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, language="es"
    )
    (booked,) = patient_emails(patient)
    assert clinic.before_visit_es  # the demo content has both languages
    assert "Antes de su visita" in booked.body_text
    assert clinic.before_visit_es.split("\n")[0] in booked.body_text
    assert clinic.before_visit.split("\n")[0] not in booked.body_text


def test_no_before_your_visit_heading_when_staff_wrote_nothing(
    service, therapist, patient, at, clinic
):
    clinic.before_visit = clinic.before_visit_es = ""
    clinic.save()
    from clinic.services import forget_clinic_profile

    forget_clinic_profile()
    services.book_appointment(service=service, therapist=therapist, start=at(10), patient=patient)
    (booked,) = patient_emails(patient)
    assert "Before your visit" not in booked.body_text + booked.body_html


def test_a_visit_booked_inside_the_cut_off_says_call_us_instead_of_offering_changes(
    service, therapist, patient, at, clinic, booking_rules
):
    # 3 hours ahead: past the 2-hour minimum notice, inside the 24-hour change cut-off.
    services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, now=at(7)
    )
    (booked,) = patient_emails(patient)
    for body in (booked.body_text, booked.body_html):
        assert f"to change it, call us on {clinic.phone}" in body
        assert "To see, move or cancel" not in body
        assert "See, move or cancel" not in body


def test_a_visit_booked_well_ahead_offers_the_manage_link(service, therapist, patient, at):
    services.book_appointment(
        service=service, therapist=therapist, start=at(10), patient=patient, now=at(9, days=-2)
    )
    (booked,) = patient_emails(patient)
    assert "To see, move or cancel your appointment:" in booked.body_text
    assert "call us on" not in booked.body_text.split("Questions?")[0]


def test_a_visit_moved_inside_the_cut_off_says_call_us(service, therapist, patient, at, clinic):
    appointment = services.book_appointment(
        service=service, therapist=therapist, start=at(10, days=2), patient=patient
    )
    # On Monday at 9:00 the Wednesday visit may still move; 14:00 that day is inside the cut-off.
    services.reschedule_appointment(appointment=appointment, start=at(14), now=at(9))
    moved = patient_emails(patient)[-1]
    assert f"to change it, call us on {clinic.phone}" in moved.body_text
    assert "To see, move or cancel" not in moved.body_text
