"""The health history and consent: the signed, expiring link to the form, signing a new
version, and the 12-month renewal rule.

Health answers are staff-only: they never reach an email, a log line, a URL, a cookie or a
cache key. The link carries an appointment's public token and nothing else; the page that
opens it is private (no cache) and the answers travel by POST only.

Who may open whose history: the link in an email proves the reader holds the address, so it
joins the booking to the address's verified record (clinic.patients.prove_email) and shows
that record's history. The link on the confirmation page proves nothing: it opens the
booking's own record only while that record is unproven (made by this booking, so nobody
else's history is in it); once the address is proven it asks for the emailed link instead.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from clinic.locking import lock
from clinic.models import Patient
from clinic.patients import new_patient, prove_email
from clinic.personal_data import months_before

from .models import Appointment, ConsentText, HealthHistory

HEALTH_SALT = "booking.health_history"
# A link works this long after it was made; the reminder brings a fresh one.
HEALTH_LINK_MAX_AGE = timedelta(days=30)
# A signed history covers visits up to this many months after it was signed.
RENEW_AFTER_MONTHS = 12

MISSING, EXPIRED, CURRENT = "missing", "expired", "current"
# The same answers signed again this soon are the same submit sent twice, not a new version.
RESUBMIT_WINDOW = timedelta(hours=1)


# --- the renewal rule (pure: no database, `visit_start` given) ----------------------------
def history_state(latest_signed_at, visit_start):
    """ "missing", "expired" or "current": the newest signed history as at a visit."""
    if latest_signed_at is None:
        return MISSING
    if latest_signed_at <= months_before(visit_start, RENEW_AFTER_MONTHS):
        return EXPIRED
    return CURRENT


def state_for(appointment):
    """history_state for `appointment`'s patient record and start (one query)."""
    if appointment.patient_id is None:
        return MISSING
    latest = HealthHistory.objects.latest_per_patient([appointment.patient_id])
    signed_at = latest[appointment.patient_id].signed_at if latest else None
    return history_state(signed_at, appointment.starts_at)


# --- the link -------------------------------------------------------------------------
def health_token(appointment, *, emailed):
    """A signed, timestamped token naming the appointment; `emailed`: the link goes in an
    email to the patient's address (following it proves they hold it)."""
    return signing.dumps({"a": appointment.public_token, "e": int(bool(emailed))}, salt=HEALTH_SALT)


class BadHealthLink(Exception):
    """Wrong, tampered or too old."""


def appointment_for_health_token(token):
    """(appointment, emailed) a token names; BadHealthLink for a wrong, tampered or expired
    one."""
    if not token or len(token) > 300:
        raise BadHealthLink
    try:
        payload = signing.loads(token, salt=HEALTH_SALT, max_age=HEALTH_LINK_MAX_AGE)
    except signing.BadSignature:
        raise BadHealthLink from None
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), str):
        raise BadHealthLink
    appointment = (
        Appointment.objects.select_related("service", "therapist", "patient")
        .filter(public_token=payload["a"])
        .first()
    )
    if appointment is None:
        raise BadHealthLink
    return appointment, bool(payload.get("e"))


def health_history_path(appointment, *, emailed):
    return reverse("booking:health_history", args=[health_token(appointment, emailed=emailed)])


def health_history_url(appointment):
    """The emailed link, to the form in the appointment's language."""
    with translation.override(appointment.language):
        return settings.SITE_URL + health_history_path(appointment, emailed=True)


# --- whose record the link opens --------------------------------------------------------
class ProofNeeded(Exception):
    """The confirmation page's link, for a booking whose address has since been proven: the
    history behind it is opened from the emailed link only."""


def record_for(appointment, *, emailed, now=None):
    """The patient record the health form of `appointment` reads and signs (see the module's
    docstring); ProofNeeded when the page's link may not open it."""
    now = now or timezone.now()
    if appointment.patient_id is None:  # booked before records, or entered by staff
        with transaction.atomic():
            (locked,) = lock(Appointment.objects.filter(pk=appointment.pk))
            if locked.patient_id is None:
                locked.patient = new_patient(
                    name=locked.patient_name,
                    email=locked.patient_email,
                    phone=locked.patient_phone,
                    language=locked.language,
                    now=now,
                )
                Appointment.objects.filter(pk=locked.pk).update(patient=locked.patient)
            appointment.patient_id = locked.patient_id
    patient = Patient.objects.get(pk=appointment.patient_id)
    if emailed:
        return prove_email(patient=patient, now=now)
    if patient.verified_at is not None:
        raise ProofNeeded
    return patient


def latest_history(patient):
    return patient.health_histories.order_by("-signed_at", "-pk").first()


def versions(patient):
    """The patient's signed histories, oldest first, each with its version number."""
    histories = list(patient.health_histories.select_related("consent_text"))
    for number, history in enumerate(histories, start=1):
        history.version = number
    return histories


class ConsentChanged(Exception):
    """The consent version the form showed is not one the clinic has."""


def sign_health_history(
    *,
    patient,
    answers,
    signed_name,
    consent_version,
    language,
    appointment=None,
    emailed=None,
    now=None,
):
    """Store a new signed version of `patient`'s health history; returns it.

    The earlier versions stay as they were signed (locked). The consent text's version is the
    one the patient was shown (versions are never edited, so it is exactly what they read).

    `emailed`: the form came from the link emailed to the address (True: the signer proved
    they hold it) or from the confirmation page's (False: proof of nothing; ProofNeeded if
    the record was proven or merged away meanwhile, as record_for would now say); None, no
    link: proven if the record is. The version records whether the address was proven, so
    staff see a history signed without proof that has since joined the address's record.
    """
    now = now or timezone.now()
    consent = ConsentText.objects.filter(version=consent_version).first()
    if consent is None:
        raise ConsentChanged
    with transaction.atomic():
        # One signing at a time per person, so two submits cannot interleave their versions.
        locked = lock(Patient.objects.filter(pk=patient.pk))
        if not locked:
            raise ProofNeeded  # merged into the address's record since the form was opened
        if emailed is False and locked[0].verified_at is not None:
            raise ProofNeeded  # proven since the page's link opened the form
        proven = bool(emailed) or locked[0].verified_at is not None
        latest = latest_history(patient)
        if (
            latest is not None
            and now - latest.signed_at < RESUBMIT_WINDOW
            and latest.consent_text_id == consent.pk
            and latest.signed_name == signed_name
            and latest.signed_with_proven_address == proven
            and all(getattr(latest, name) == value for name, value in answers.items())
        ):
            return latest  # the same form sent twice (a double click, a reload): one version
        history = HealthHistory(
            patient=patient,
            consent_text=consent,
            signed_name=signed_name,
            signed_at=now,
            language=language,
            appointment=appointment,
            signed_with_proven_address=proven,
            **answers,
        )
        history.full_clean()
        history.save()
    return history


def publish_consent_text(*, text, text_es="", now=None):
    """Staff: a new version of the consent text (the earlier ones stay as signed)."""
    now = now or timezone.now()
    with transaction.atomic():
        latest = lock(ConsentText.objects.order_by("-version")[:1])
        version = (latest[0].version if latest else 0) + 1
        consent = ConsentText(version=version, text=text, text_es=text_es, created_at=now)
        consent.full_clean()
        consent.save()
    return consent
