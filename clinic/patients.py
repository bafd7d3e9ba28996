"""The patient record: made on booking, joined to the address's record once the address is
proven, merged by staff.

When does a booking join an existing record? Only once the person booking has shown they
read mail at the address: they followed a link the site emailed there (the health-history
link in the confirmation or the reminder, or a waitlist offer). Until then the booking has a
record of its own (unverified), so someone who types another person's address gets an empty
record: they can neither read the other person's health history nor add to their record.
Each address has at most one verified record (a conditional unique constraint), whatever
races.

Each app re-points what it links to a record through the registry in clinic.personal_data
(`repoint`), so this module never reaches into another app's tables.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import personal_data
from .locking import lock
from .models import Patient


def new_patient(*, name, email, phone="", language="en", now=None):
    """An unverified record for one booking (its address not proven yet). Runs inside the
    booking's transaction, which is the caller's."""
    now = now or timezone.now()
    patient = Patient(
        name=name,
        email=email.strip(),
        phone=str(phone or ""),
        language=language,
        created_at=now,
        last_seen_at=now,
    )
    patient.full_clean()
    patient.save()
    return patient


def prove_email(*, patient, now=None):
    """`patient`'s holder has followed a link emailed to its address: make it that address's
    verified record, or merge it into the one that already is. Returns the verified record.

    Safe to run twice and concurrently: two unverified records of one address proven at once
    end as one (the loser of the unique constraint merges into the winner).
    """
    now = now or timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                mine = next(iter(lock(Patient.objects.filter(pk=patient.pk))), None)
                if mine is None:
                    raise Patient.DoesNotExist("merged meanwhile")
                if mine.verified_at is not None:
                    return mine
                existing = lock(Patient.objects.verified().for_email(mine.email).order_by("pk"))
                if existing:
                    target = existing[0]
                    _merge(keep=target, other=mine, now=now)
                    return target
                mine.verified_at = now
                mine.save(update_fields=["verified_at"])
                for part in personal_data.parts():
                    part.attach_proven(mine)
                return mine
        except IntegrityError:
            continue  # another record of the address was verified a moment ago: join it
    raise RuntimeError("Could not settle the patient record")


def merge_patients(*, keep, other, now=None):
    """Staff: `other` is the same person as `keep`. Everything linked to `other` (visits,
    waitlist entries, newsletter subscription, health histories) moves to `keep`, its
    address is kept among `keep`'s, and `other` is deleted. Returns `keep`, re-read."""
    if keep.pk == other.pk:
        raise ValueError("A record cannot be merged into itself.")
    with transaction.atomic():
        _merge(keep=keep, other=other, now=now or timezone.now())
    keep.refresh_from_db()
    return keep


def _merge(*, keep, other, now):
    """Must run inside a transaction: both rows are locked (in id order: no deadlock)."""
    rows = {
        p.pk: p for p in lock(Patient.objects.filter(pk__in=[keep.pk, other.pk]).order_by("pk"))
    }
    keep, other = rows[keep.pk], rows[other.pk]
    for part in personal_data.parts():
        part.repoint(source=other, target=keep)
    known = keep.emails
    for email in other.emails:
        if email.lower() not in [e.lower() for e in known]:
            known.append(email)
    keep.other_emails = known[1:]
    keep.last_seen_at = max(keep.last_seen_at, other.last_seen_at)
    if other.verified_at and not keep.verified_at:
        keep.verified_at = other.verified_at if keep.email.lower() == other.email.lower() else None
    other.delete()
    keep.save()
    return keep
