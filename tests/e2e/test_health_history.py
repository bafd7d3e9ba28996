"""A patient on a phone fills in and signs the health history and consent from the link in
their confirmation email, in English and in Spanish (axe on every page)."""

import re

import pytest
from playwright.sync_api import expect

from booking.models import HealthHistory
from booking.services import PatientDetails, book_appointment
from clinic.models import OutgoingEmail

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
WORDS = {
    "en": {
        "title": "Your health history and consent",
        "conditions": "Health conditions (optional)",
        "medications": "Medications you take (optional)",
        "avoid": "Areas of the body to avoid (optional)",
        "medium": "Medium",
        "contact": "Emergency contact's name",
        "contact_phone": "Emergency contact's phone",
        "agree": "I have read the consent above and agree to it.",
        "name": "Type your full name to sign",
        "sign": "Sign",
        "signed": "Thank you: your health history is signed.",
        "error": "Tick the box to agree to the consent.",
    },
    "es": {
        "title": "Su historial de salud y consentimiento",
        "conditions": "Problemas de salud (opcional)",
        "medications": "Medicamentos que toma (opcional)",
        "avoid": "Zonas del cuerpo que evitar (opcional)",
        "medium": "Media",
        "contact": "Nombre del contacto de emergencia",
        "contact_phone": "Teléfono del contacto de emergencia",
        "agree": "He leído el consentimiento de arriba y lo acepto.",
        "name": "Escriba su nombre completo para firmar",
        "sign": "Firmar",
        "signed": "Gracias: su historial de salud está firmado.",
        "error": "Marque la casilla para aceptar el consentimiento.",
    },
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_patient_fills_in_and_signs_the_form_on_a_phone(
    page, check_page, live_server, seeded, booking_rules, therapist, service, at, language
):
    words = WORDS[language]
    appointment = book_appointment(
        service=service,
        therapist=therapist,
        start=at(10),
        patient=PatientDetails(name="María Pérez", email="maria@example.com", phone="+12095550142"),
        language=language,
    )
    (email,) = OutgoingEmail.objects.filter(body_text__contains="/book/health/")
    link = re.search(r"https?://\S+?(/\S*book/health/\S+/)", email.body_text).group(1)
    assert link.startswith("/es/" if language == "es" else "/book/")

    page.set_viewport_size(PHONE)
    page.goto(live_server.url + link)
    expect(page.get_by_role("heading", level=1)).to_have_text(words["title"])
    check_page(f"health-history-{language}-1-form")

    page.set_viewport_size(PHONE)
    page.get_by_label(words["conditions"]).fill("Asma leve")
    page.get_by_label(words["medications"]).fill("Inhalador")
    page.get_by_label(words["avoid"]).fill("Hombro izquierdo")
    page.get_by_label(words["medium"], exact=True).check()
    for question in (
        "intake_clot_signs",
        "intake_surgery_or_immobility",
        "intake_blood_thinners",
        "intake_pregnant",
    ):
        page.locator(f'input[name="{question}"][value="no"]').check()
    page.get_by_label(words["contact"]).fill("Luis Pérez")
    page.get_by_label(words["contact_phone"]).fill("209 555 0199")
    page.get_by_label(words["name"]).fill("María Pérez")
    # Forgot the box: the form comes back with the message and everything typed kept.
    page.expected_4xx.add(live_server.url + link)
    page.get_by_role("button", name=words["sign"], exact=True).click()
    expect(page.get_by_text(words["error"])).to_be_visible()
    expect(page.get_by_label(words["avoid"])).to_have_value("Hombro izquierdo")
    check_page(f"health-history-{language}-2-refused")

    page.set_viewport_size(PHONE)
    page.get_by_label(words["agree"]).check()
    page.get_by_role("button", name=words["sign"], exact=True).click()
    expect(page.get_by_text(words["signed"])).to_be_visible()
    check_page(f"health-history-{language}-3-signed")

    history = HealthHistory.objects.get()
    assert history.signed_name == "María Pérez" and history.language == language
    assert history.patient == type(appointment).objects.get(pk=appointment.pk).patient
    assert history.patient.verified_at is not None  # the emailed link proved the address


def test_staff_read_a_patients_page_with_the_signed_versions(
    page, check_page, live_server, seeded, staff_user, booking_rules, therapist, service, at
):
    from booking.health import sign_health_history
    from booking.models import ConsentText
    from clinic.patients import prove_email

    visit = book_appointment(
        service=service,
        therapist=therapist,
        start=at(10),
        patient=PatientDetails(name="María Pérez", email="maria@example.com", phone="+12095550142"),
    )
    patient = prove_email(patient=visit.patient)
    for conditions in ("Asthma", "Asthma, mild"):
        sign_health_history(
            patient=patient,
            answers={
                "conditions": conditions,
                "medications": "",
                "areas_to_avoid": "",
                "pressure": "light",
                "emergency_name": "Luis Pérez",
                "emergency_phone": "+12095550199",
                "intake_clot_signs": False,
                "intake_surgery_or_immobility": False,
                "intake_blood_thinners": False,
                "intake_pregnant": True,
            },
            signed_name="María Pérez",
            consent_version=ConsentText.current().version,
            language="es",
        )
    page.goto(live_server.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("staffer")
    page.get_by_label("Password").fill("a-long-staff-password")
    page.get_by_role("button", name="Log in").click()
    page.goto(live_server.url + f"/admin/clinic/patient/{patient.pk}/change/")
    expect(page.get_by_role("heading", name=re.compile("Version 2 \\(latest\\)"))).to_be_visible()
    expect(page.get_by_text("Asthma, mild")).to_be_visible()
    check_page("admin-patient")
