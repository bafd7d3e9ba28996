"""What the site holds about a person, found by their email address: export, erase, retention.

Each app says what it holds in a part of its own (a PersonalData subclass in its
`personal_data` module, registered with @register and imported by its AppConfig.ready), so
no app reaches into another's tables: the booking knows appointments, the newsletter its
subscribers, the site its outbox. The shape is pretix's per-app data shredders.

Erasing runs every part in one transaction: each part first locks and checks what it holds
(a refusal from any of them erases nothing), then erases it; the outbox goes last, since a
part's own erasure may count the emails it sent.
"""

import calendar
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import OutgoingEmail, Patient

logger = logging.getLogger(__name__)
_parts = []


class ErasureRefused(Exception):
    """A part cannot erase this person yet (a visit still ahead, say); nothing was erased."""


class PersonalData:
    """What one app holds about a person. Subclass, fill in, and @register it."""

    # The key of this part in the export (and in the counts erase() returns).
    key = ""
    # The admin's partial that shows summary(email) to staff ("What is held about ...").
    summary_template = ""
    # The admin's partial that says what erasing removes, on the confirmation page.
    erase_template = ""
    # Parts run in this order (the outbox's last: the others may count its rows).
    order = 0
    # Whether export() adds to a person's copy of their data.
    exported = True
    # What erase()'s count means, for staff ("{} appointment(s) anonymised").
    erased_label = "{}"

    def summary(self, email, *, now):
        """What staff see about `email` on the patient page: a context for summary_template."""
        return {}

    def export(self, email):
        """Everything held about `email`, JSON-ready (None or [] when nothing)."""
        raise NotImplementedError

    def refusal(self, email, *, now):
        """Why `email` cannot be erased now (a message), or None. Called under erase()'s
        transaction after lock(), so what it checks cannot change before the erase."""
        return None

    def lock(self, email):
        """Lock the rows erase() will change (inside erase()'s transaction)."""

    def erase(self, email, *, now):
        """Remove or anonymise what is held about `email`; returns how many records."""
        raise NotImplementedError

    def apply_retention(self, *, now):
        """Drop what is kept longer than the settings allow; returns {what: how many}."""
        return {}

    # --- the patient record (clinic.models.Patient) -------------------------------------
    # The admin's partial that shows patient_summary(patient) on the patient's own page.
    patient_template = ""

    def patient_summary(self, patient, *, now):
        """What staff see on `patient`'s page: a context for patient_template."""
        return {}

    def repoint(self, *, source, target):
        """Move what this app links to the record `source` onto `target` (a merge). Runs
        inside the merge's transaction; nothing may be lost."""

    def attach_proven(self, patient):
        """`patient` has just proven its address: link what this app holds that was itself
        proven with that address (a confirmed newsletter sign-up, say)."""


def register(part_class):
    """Class decorator: add an app's part to the site's list (once, whatever the imports)."""
    if not any(type(part) is part_class for part in _parts):
        _parts.append(part_class())
        _parts.sort(key=lambda part: part.order)
    return part_class


def parts():
    return list(_parts)


def normalise(email):
    return email.strip()


def summary(*, email, now=None):
    """[(part, its summary)] for the admin's patient page, and the reasons not to erase."""
    now = now or timezone.now()
    email = normalise(email)
    return {
        "parts": [(part, part.summary(email, now=now)) for part in _parts],
        "refusals": [
            reason for reason in (part.refusal(email, now=now) for part in _parts) if reason
        ],
    }


def export(*, email, now=None):
    """Everything the site holds about the person with `email`, as a JSON-ready dict."""
    now = now or timezone.now()
    email = normalise(email)
    return {
        "email": email,
        "exported_at": now.isoformat(),
        **{part.key: part.export(email) for part in _parts if part.exported},
    }


def erase(*, email, now=None):
    """Erase the person with `email` on their request, every part in one transaction.

    Raises ErasureRefused (nothing erased) when a part refuses. Returns {part key: count}.
    """
    now = now or timezone.now()
    email = normalise(email)
    with transaction.atomic():
        for part in _parts:
            part.lock(email)
        for part in _parts:
            reason = part.refusal(email, now=now)
            if reason:
                raise ErasureRefused(reason)
        return {part.key: part.erase(email, now=now) for part in _parts}


def _combined(values):
    """One part's exports for several addresses, as one value."""
    values = [value for value in values if value]
    if all(isinstance(value, list) for value in values):
        return [item for value in values for item in value]
    return values[0] if len(values) == 1 else values


def patient_summary(*, patient, now=None):
    """[(part, its summary)] for the patient's admin page."""
    now = now or timezone.now()
    return [
        (part, part.patient_summary(patient, now=now)) for part in _parts if part.patient_template
    ]


def export_patient(*, patient, now=None):
    """Everything held about the person of `patient`, under every address they are known by."""
    now = now or timezone.now()
    emails = [normalise(email) for email in patient.emails]
    return {
        "email": emails[0],
        "other_emails": emails[1:],
        "exported_at": now.isoformat(),
        **{
            part.key: _combined([part.export(email) for email in emails])
            for part in _parts
            if part.exported
        },
    }


def erase_patient(*, patient, now=None):
    """Erase the person of `patient` under every address they are known by, and the record
    itself, in one transaction; ErasureRefused erases nothing. Returns {part key: count}."""
    now = now or timezone.now()
    emails = [normalise(email) for email in patient.emails]
    with transaction.atomic():
        for email in emails:
            for part in _parts:
                part.lock(email)
        for email in emails:
            for part in _parts:
                reason = part.refusal(email, now=now)
                if reason:
                    raise ErasureRefused(reason)
        counts = {}
        for email in emails:
            for part in _parts:
                counts[part.key] = counts.get(part.key, 0) + part.erase(email, now=now)
        counts["patients"] = counts.get("patients", 0) + type(patient).objects.filter(
            pk=patient.pk
        ).delete()[1].get(type(patient)._meta.label, 0)
        return counts


def describe(erased):
    """erase()'s counts in words for staff: "1 appointment(s) anonymised, ... and ..."."""
    words = [part.erased_label.format(erased[part.key]) for part in _parts if part.key in erased]
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def apply_retention(*, now=None):
    """Beat: keep personal data only as long as the settings say; {what: count}. Safe twice."""
    now = now or timezone.now()
    counts = {}
    for part in _parts:
        counts.update(part.apply_retention(now=now))
    # Counts only: a log line here must never carry a name, an address or an answer.
    logger.info("Retention: %s", ", ".join(f"{what} {n}" for what, n in counts.items()))
    return counts


def months_before(moment, months):
    """`moment` moved back by whole calendar months (the 31st becomes the month's last day)."""
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def isoformat(value):
    return value.isoformat() if value is not None else None


@register
class PatientRecords(PersonalData):
    """The site's patient records with the address (clinic.models.Patient)."""

    key = "patients"
    erased_label = "{} patient record(s) deleted"
    erase_template = "admin/clinic/_personal_data_patients_erase.html"
    order = 90

    def _records(self, email):
        return Patient.objects.for_email(email)

    def export(self, email):
        return [
            {
                "name": patient.name,
                "email": patient.email,
                "other_emails": patient.other_emails,
                "phone": patient.phone,
                "language": patient.language,
                "created_at": isoformat(patient.created_at),
                "address_confirmed_at": isoformat(patient.verified_at),
            }
            for patient in self._records(email).order_by("pk")
        ]

    def lock(self, email):
        from .locking import lock

        lock(self._records(email).values_list("pk", flat=True))

    def erase(self, email, *, now):
        _total, per_model = self._records(email).delete()
        return per_model.get(Patient._meta.label, 0)

    def apply_retention(self, *, now):
        """A record nobody booked with for as long as appointments are kept goes (its
        health histories with it)."""
        cutoff = months_before(now, settings.APPOINTMENT_RETENTION_MONTHS)
        _total, per_model = Patient.objects.filter(last_seen_at__lte=cutoff).delete()
        return {"patients_deleted": per_model.get(Patient._meta.label, 0)}


@register
class SentEmails(PersonalData):
    """The site's own part: finished emails in the outbox addressed to the person."""

    key = "emails"
    erased_label = "{} sent email(s) deleted"
    exported = False  # their content is what the other parts export
    erase_template = "admin/clinic/_personal_data_erase.html"
    order = 100

    @staticmethod
    def _ids(email):
        """Finished outbox emails addressed to `email` (the list of recipients is JSON)."""
        email = email.strip().lower()
        finished = OutgoingEmail.objects.filter(
            state__in=[OutgoingEmail.State.SENT, OutgoingEmail.State.FAILED]
        )
        if email.isascii():
            # JSON text holds the address as typed; narrow in SQL, then compare exactly.
            finished = finished.filter(to__icontains=email)
        return [
            each.pk
            for each in finished.only("pk", "to").iterator()
            if any(str(address).strip().lower() == email for address in each.to or ())
        ]

    def export(self, email):
        return None

    def erase(self, email, *, now):
        deleted, _counts = OutgoingEmail.objects.filter(pk__in=self._ids(email)).delete()
        return deleted

    def apply_retention(self, *, now):
        """Delete the transactional emails (booking and sign-up mail) sent as long ago as
        appointments are kept (APPOINTMENT_RETENTION_MONTHS): each holds a name, a time and
        an address. Newsletter copies belong to their issue's delivery record, and an email
        still waiting to go out is left to go."""
        cutoff = months_before(now, settings.APPOINTMENT_RETENTION_MONTHS)
        emails, _counts = OutgoingEmail.objects.filter(
            category=OutgoingEmail.Category.TRANSACTIONAL,
            state__in=[OutgoingEmail.State.SENT, OutgoingEmail.State.FAILED],
            created_at__lte=cutoff,
        ).delete()
        return {"emails_deleted": emails}
