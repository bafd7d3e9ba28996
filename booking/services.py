"""Booking: book a free time, cancel it, move it; staff's attendance marks and clash check.

Each write owns its transaction and re-checks what is free under a lock on the therapist's
row (booking/availability.py reads it from the database, never a cache); the patient's and
the clinic's emails are written in the same transaction (booking/emails.py).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.locking import lock

from . import availability
from .emails import write_change_emails, write_confirmation_emails, write_waitlist_joined_email
from .models import (
    Appointment,
    BookingRules,
    Hold,
    Room,
    RoomClosure,
    Service,
    Therapist,
    TimeOff,
    Vacancy,
    WaitlistEntry,
    new_offer_round,
)

logger = logging.getLogger(__name__)


class SlotUnavailable(Exception):
    """The time asked for is not free (any more), or cannot be booked online."""


@dataclass(frozen=True)
class PatientDetails:
    """Who is booking, as they typed it (each appointment keeps its own copy; the person's
    record across visits is clinic.models.Patient)."""

    name: str
    email: str
    phone: str
    notes: str = ""
    # Intake answers (True, False, or None when not asked): health data, staff eyes only.
    intake: dict = field(default_factory=dict)


class OfferLost(SlotUnavailable):
    """A waitlist offer that can no longer be claimed: it expired, was released or claimed."""


class TooLateToChange(Exception):
    """The cut-off for changing or cancelling online has passed."""


def book_appointment(
    *,
    service,
    therapist,
    start,
    patient,
    submission_key=None,
    source_article=None,
    language=None,
    hold=None,
    now=None,
    second_therapist=None,
    companion=None,
):
    """Book `start` for `patient` with `therapist` (None: whoever offering `service` is free).

    Locks the candidate therapists' rows (then the rooms the treatment may use), then
    re-checks everything from the database (rules, hours, closures, appointments, holds,
    rooms: never a cached copy) before inserting; a treatment that needs a room gets the
    first suitable one free (the patient never picks it). The confirmation emails are
    written in the same transaction. A `submission_key` seen before returns the appointment
    it booked instead of booking again (a double-clicked submit). On PostgreSQL the
    exclusion constraints (therapist and room) are the guarantee; a violation here is
    reported as SlotUnavailable like any other lost race. `language` is the patient's
    (default English): it is kept with the appointment and every email to them is written
    in it. `hold`: the waitlist Hold its holder is claiming (its time is free for them
    alone); the hold becomes this appointment in the same transaction, or OfferLost.

    A treatment for two (`service.for_two`) books two visits at once, all or nothing: with
    `therapist` and `second_therapist` (either None: any other free), in one couples room,
    sharing a `pair`; `companion` is the second person's PatientDetails (name optional,
    their own health answers). The first visit is returned: its links manage both.
    """
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    with transaction.atomic():
        if submission_key:
            earlier = Appointment.objects.filter(submission_key=submission_key).first()
            if earlier:
                return earlier
        service = Service.objects.active().filter(pk=service.pk).first()
        if service is None:
            raise SlotUnavailable(_("That service can no longer be booked online."))
        candidates = Therapist.objects.offering(service).order_by("pk")
        if therapist is not None and not service.for_two:
            candidates = candidates.filter(pk=therapist.pk)
        # Locked in one order (by id), so two bookings of "no preference" cannot deadlock.
        candidates = lock(candidates)
        if submission_key:
            # Again under the lock: an identical submit that held it first has committed by
            # now, and its patient must get that booking, not "that time was just taken".
            earlier = Appointment.objects.filter(submission_key=submission_key).first()
            if earlier:
                return earlier
        if not candidates:
            raise SlotUnavailable(_("That therapist does not offer this service online."))
        rooms = _lock_rooms(service)
        if hold is not None:
            hold = _claimable(hold, start=start, now=now)
            candidates = [c for c in candidates if c.pk == hold.therapist_id]
        end = start + service.duration + service.buffer
        _end_expired_holds(
            therapist_ids=[c.pk for c in candidates], rooms=rooms, start=start, end=end, now=now
        )
        day = start.astimezone(tz).date()
        free = availability.free_starts(
            service=service,
            therapists=candidates,
            first_day=day,
            last_day=day,
            now=now,
            holding=hold,
            rooms=rooms,
        )
        free_now = [c for c in candidates if start in set(free.get(c.pk, ()))]
        chosen = free_now[:1]
        if service.for_two:
            chosen = _two_of(free_now, therapist, second_therapist)
        room = None
        if chosen and rooms is not None:
            room = availability.free_room(
                service=service, rooms=rooms, start=start, now=now, holding=hold
            )
        if not chosen or (rooms is not None and room is None):
            raise SlotUnavailable(_("Sorry, that time was just taken or is no longer free."))
        pair = new_offer_round() if service.for_two else None
        people = [patient, companion or PatientDetails(name="", email="", phone="")]
        record = _patient_record(patient, language or settings.LANGUAGE_CODE, hold, now)
        visits = []
        for index, (who, details) in enumerate(zip(chosen, people, strict=False)):
            visit = Appointment(
                therapist=who,
                service=service,
                room=room,
                pair=pair,
                starts_at=start,
                ends_at=start + service.duration,
                blocked_until=end,
                patient_name=_companion_name(patient, details) if index else patient.name,
                patient_email=patient.email,
                patient_phone=patient.phone,
                notes=patient.notes if index == 0 else "",
                consented_to_policy_at=now,
                submission_key=(submission_key or None) if index == 0 else None,
                created_at=now,
                scheduled_at=now,
                source_article=source_article,
                language=language or settings.LANGUAGE_CODE,
                # The record is the booker's; a companion's visit has no record of its own.
                patient=record if index == 0 else None,
                **{name: details.intake.get(name) for name in Appointment.INTAKE_FIELDS},
            )
            visit.full_clean(exclude=["submission_key"])
            visits.append(visit)
        appointment = visits[0]
        try:
            with transaction.atomic():
                if hold is not None:
                    # The round's holds end before the appointment is written: on PostgreSQL
                    # one constraint covers both, and the appointment takes the held time.
                    Hold.objects.filter(pk=hold.pk).update(state=Hold.State.CLAIMED)
                    # Offered to several at once: the others were not quick enough.
                    Hold.objects.active().of_round(hold).update(state=Hold.State.LOST)
                for visit in visits:
                    visit.save()
        except IntegrityError as exc:
            # Decided by what is stored, not by the error's wording: a concurrent submit of
            # the same form committed first (its row is visible once our insert fails).
            earlier = submission_key and (
                Appointment.objects.filter(submission_key=submission_key).first()
            )
            if earlier:
                if appointment.patient.verified_at is None:  # made for this copy only
                    appointment.patient.delete()
                return earlier
            raise SlotUnavailable(
                _("Sorry, that time was just taken or is no longer free.")
            ) from exc
        if hold is not None:
            Hold.objects.filter(pk=hold.pk).update(appointment=appointment)
            WaitlistEntry.objects.filter(pk=hold.entry_id).update(
                state=WaitlistEntry.State.BOOKED, patient=appointment.patient
            )
        write_confirmation_emails(appointment, can_change=can_change_online(appointment, now=now))
    return appointment


def _patient_record(patient, language, hold, now):
    """The booking's patient record (clinic.patients): its own, unproven, unless it comes
    from a waitlist offer emailed to the same address, which proves it and joins the
    address's verified record. Runs inside the booking's transaction."""
    from clinic.patients import new_patient, prove_email

    record = new_patient(
        name=patient.name, email=patient.email, phone=patient.phone, language=language, now=now
    )
    if hold is not None and hold.entry.email.strip().lower() == patient.email.strip().lower():
        record = prove_email(patient=record, now=now)
    return record


def _companion_name(patient, companion):
    """The second person's name as typed, or who brought them when it was left out."""
    return companion.name.strip() or _("Guest of %(name)s") % {"name": patient.name}


def _two_of(free, first, second):
    """Two different therapists among `free` (those free then, in id order): `first` and
    `second` when chosen (either None: any other), or [] when no such two are free."""
    ids = {therapist.pk for therapist in free}
    wanted = [choice for choice in (first, second) if choice is not None]
    if any(choice.pk not in ids for choice in wanted) or len({c.pk for c in wanted}) < len(wanted):
        return []
    chosen = [next(t for t in free if t.pk == choice.pk) for choice in wanted]
    for therapist in free:
        if len(chosen) == 2:
            break
        if therapist.pk not in {c.pk for c in chosen}:
            chosen.append(therapist)
    return chosen if len(chosen) == 2 else []


def _lock_rooms(service):
    """The rooms `service` may use, locked, in the order they are tried; None when it needs
    none. Locked by id after the therapists (every booking takes its locks in that order,
    so two cannot deadlock); must run inside the booking's transaction."""
    order = availability.rooms_for(service)
    if order is None:
        return None
    locked = {
        room.pk for room in lock(Room.objects.filter(pk__in=[r.pk for r in order]).order_by("pk"))
    }
    return [room for room in order if room.pk in locked]


def _end_expired_holds(*, therapist_ids, start, end, now, rooms=None):
    """End the holds of these therapists (or in these rooms) that meet [start, end) and ran
    out unclaimed, so a booking of their time need not wait for the beat; the rest of each
    held time is offered on as the beat would. Must run in the booking's transaction, under
    the therapists' (and rooms') lock."""
    whose = Q(therapist_id__in=therapist_ids)
    if rooms:
        whose |= Q(room_id__in=[room.pk for room in rooms])
    ended = set()
    for hold in Hold.objects.expired(now).filter(whose).within(start, end):
        if Hold.objects.filter(pk=hold.pk, state=Hold.State.ACTIVE).update(
            state=Hold.State.EXPIRED
        ):
            ended.add((hold.therapist_id, hold.room_id or 0, hold.starts_at, hold.blocked_until))
    for therapist_id, room_id, begins, ends in sorted(ended):
        record_vacancy(therapist_id=therapist_id, room_id=room_id or None, start=begins, end=ends)


def _claimable(hold, *, start, now):
    """`hold` locked and re-read, if its holder may still book `start` with it; OfferLost
    otherwise. Must run inside the booking's transaction, after the therapist's lock."""
    locked = next(iter(lock(Hold.objects.filter(pk=hold.pk))), None)
    if (
        locked is None
        or locked.state != Hold.State.ACTIVE
        or locked.expires_at <= now
        or locked.starts_at != start
    ):
        raise OfferLost(
            _("Sorry, this offer has ended: someone was quicker. You are still on the waitlist.")
        )
    return locked


def can_change_online(appointment, *, now=None, rules=None):
    """Whether the patient may still cancel or move `appointment` themselves."""
    now = now or timezone.now()
    rules = rules or BookingRules.current()
    return appointment.is_active and now <= rules.online_change_closes(appointment.starts_at)


def _check_change_allowed(appointment, now):
    if not appointment.is_active:
        raise SlotUnavailable(_("This appointment is cancelled."))
    if appointment.status != Appointment.Status.CONFIRMED:
        raise TooLateToChange(_("This appointment can no longer be changed online."))
    if not can_change_online(appointment, now=now):
        raise TooLateToChange(
            _("It is too late to change this appointment online. Please call us.")
        )


def cancel_appointment(*, appointment, reason="", by_staff=False, now=None):
    """Cancel `appointment` and tell the patient (with a cancelled .ics) and the clinic.

    Patients may cancel only before the cut-off (TooLateToChange after it); staff at any
    time. Cancelling twice is harmless: the second call changes nothing and sends nothing.
    The visits of a couples booking are cancelled together, with one email.
    Returns True if this call cancelled it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The therapists first, in id order, as booking and moving take them: the vacancy
        # written below needs their rows, and taking the appointment first could deadlock
        # with a move of the same visit (or a booking) holding a therapist and waiting for it.
        _lock_therapists_of(appointment)
        (locked,) = lock(Appointment.objects.filter(pk=appointment.pk))
        if not locked.is_active:
            return False
        if not by_staff:
            _check_change_allowed(locked, now)
        together = lock(Appointment.objects.together_with(locked).order_by("pk"))
        for visit in together:
            if not visit.is_active:
                continue
            visit.status = Appointment.Status.CANCELLED
            visit.cancelled_at = now
            visit.cancellation_reason = reason[:300]
            visit.sequence += 1
            visit.full_clean(exclude=["submission_key"])
            visit.save()
            record_vacancy(
                therapist_id=visit.therapist_id,
                room_id=visit.room_id,
                start=visit.starts_at,
                end=visit.blocked_until,
            )
        first = together[0]
        write_change_emails(
            first,
            cancelled=True,
            by_staff=by_staff,
            can_change=can_change_online(first, now=now),
        )
    appointment.refresh_from_db()
    return True


def reschedule_appointment(*, appointment, start, now=None):
    """Move `appointment` to `start` with the same therapist and treatment.

    The same guard as booking: the therapist's row locked (and the treatment's rooms), the
    time re-checked from the database with this appointment left out, the exclusion
    constraints behind it. It keeps its room when that is free then, or takes another
    suitable one. A couples booking moves as one: both therapists and the shared room must
    be free at `start`. Moving it to the time it already has changes nothing (a
    double-clicked submit). Raises TooLateToChange after the cut-off and SlotUnavailable
    if `start` is not free.
    """
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    with transaction.atomic():
        _lock_therapists_of(appointment)
        (locked,) = lock(
            Appointment.objects.select_related("service", "therapist").filter(pk=appointment.pk)
        )
        if locked.is_active and locked.starts_at == start:
            return locked
        _check_change_allowed(locked, now)
        visits = lock(
            Appointment.objects.together_with(locked).select_related("service").order_by("pk")
        )
        service = locked.service
        rooms = _lock_rooms(service)
        if rooms is not None and locked.room is not None:
            # Its own room first, so a move keeps it when it can.
            rooms = sorted(rooms, key=lambda room: room.pk != locked.room_id)
        end = start + service.duration + service.buffer
        _end_expired_holds(
            therapist_ids=[v.therapist_id for v in visits],
            rooms=rooms,
            start=start,
            end=end,
            now=now,
        )
        day = start.astimezone(tz).date()
        therapists = list(
            Therapist.objects.offering(service).filter(pk__in=[v.therapist_id for v in visits])
        )
        free = availability.free_starts(
            service=service,
            therapists=therapists,
            first_day=day,
            last_day=day,
            now=now,
            ignoring=locked,
            rooms=rooms,
        )
        room = None
        if rooms is not None:
            room = availability.free_room(
                service=service, rooms=rooms, start=start, now=now, ignoring=locked
            )
        if any(start not in set(free.get(v.therapist_id, ())) for v in visits) or (
            rooms is not None and room is None
        ):
            raise SlotUnavailable(_("Sorry, that time was just taken or is no longer free."))
        freed = [(v.therapist_id, v.room_id, v.starts_at, v.blocked_until) for v in visits]
        for visit in visits:
            visit.starts_at = start
            visit.ends_at = start + service.duration
            visit.blocked_until = end
            visit.room = room
            visit.scheduled_at = now
            visit.reminded_for = None
            visit.sequence += 1
            visit.full_clean(exclude=["submission_key"])
        try:
            with transaction.atomic():
                for visit in visits:
                    visit.save()
        except IntegrityError as exc:
            raise SlotUnavailable(
                _("Sorry, that time was just taken or is no longer free.")
            ) from exc
        first = visits[0]
        write_change_emails(
            first,
            cancelled=False,
            by_staff=False,
            can_change=can_change_online(first, now=now),
        )
        for therapist_id, room_id, begins, ends in freed:
            record_vacancy(therapist_id=therapist_id, room_id=room_id, start=begins, end=ends)
    return next(v for v in visits if v.pk == locked.pk)


def mark_attendance(*, appointments, status, now=None):
    """Mark confirmed appointments that have begun as completed or no-show; returns them.

    The rows are locked and re-read first, so one cancelled meanwhile is left alone.
    """
    now = now or timezone.now()
    if status not in (Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW):
        raise ValueError(f"Not an attendance status: {status}")
    with transaction.atomic():
        # Locked by id: the admin's queryset may join nullable relations, which PostgreSQL
        # cannot lock.
        eligible = lock(
            Appointment.objects.filter(
                pk__in=list(appointments.values_list("pk", flat=True)),
                status=Appointment.Status.CONFIRMED,
                starts_at__lte=now,
            )
        )
        Appointment.objects.filter(pk__in=[a.pk for a in eligible]).update(status=status)
    return eligible


def validate_not_overlapping(*, appointment):
    """Refuse an appointment that meets another active one of its therapist, or of its room
    (buffers counted), or a time held for the waitlist; when its treatment needs a room and
    none is set, give it the first suitable one free then (named in the message if none is).

    Must run inside a transaction (clinic.locking enforces it): it locks the therapist's row
    and the treatment's rooms first, so no other booking for them can slip in between this
    check and the insert.
    """
    lock(Therapist.objects.filter(pk=appointment.therapist_id))
    service = appointment.service
    rooms = _lock_rooms(service)
    if appointment.room_id is not None and rooms is not None:
        rooms = sorted(rooms, key=lambda room: room.pk != appointment.room_id)
    start, end = appointment.starts_at, appointment.blocked_until
    _end_expired_holds(
        therapist_ids=[appointment.therapist_id],
        rooms=rooms if appointment.room_id is None else [appointment.room],
        start=start,
        end=end,
        now=timezone.now(),
    )
    own = Appointment.objects.together_with(appointment) if appointment.pk else None
    own_ids = list(own.values_list("pk", flat=True)) if own is not None else []
    held = Hold.objects.active().overlapping(appointment.therapist_id, start, end)
    if appointment.room_id is not None:
        held = held | Hold.objects.active().filter(
            room_id=appointment.room_id, starts_at__lt=end, blocked_until__gt=start
        )
    held = held.select_related("entry").first()
    if held:
        raise ValidationError(
            _(
                "This time is held for %(patient)s from the waitlist until %(until)s; "
                "release the hold first."
            )
            % {
                "patient": held.entry.name,
                "until": f"{timezone.localtime(held.expires_at):%a %b %-d, %H:%M}",
            }
        )
    clash = (
        Appointment.objects.active()
        .overlapping(appointment.therapist_id, start, end)
        .exclude(pk=appointment.pk)
        .first()
    )
    if clash:
        local = timezone.localtime(clash.starts_at)
        raise ValidationError(
            _(
                "%(therapist)s already has %(patient)s at %(when)s "
                "(until %(until)s with the buffer)."
            )
            % {
                "therapist": clash.therapist,
                "patient": clash.patient_name,
                "when": f"{local:%a %b %-d, %H:%M}",
                "until": f"{timezone.localtime(clash.blocked_until):%H:%M}",
            }
        )
    if appointment.room_id is not None:
        if rooms is not None and appointment.room_id not in {room.pk for room in rooms}:
            raise ValidationError(
                {"room": f"{appointment.room} does not suit {service}: choose another room."}
            )
        room_clash = (
            Appointment.objects.active()
            .in_room(appointment.room_id, start, end)
            .exclude(pk__in=own_ids or [appointment.pk])
            .select_related("therapist")
            .first()
        )
        if room_clash:
            raise ValidationError({"room": _room_clash_message(appointment.room, room_clash)})
        ignoring = appointment if appointment.pk else None
        room = availability.free_room(
            service=service, rooms=[appointment.room], start=start, ignoring=ignoring
        )
        if room is None:
            raise ValidationError({"room": f"{appointment.room} is closed then."})
        return
    if rooms is None:
        return
    room = availability.free_room(service=service, rooms=rooms, start=start)
    if room is None:
        taken = (
            Appointment.objects.active()
            .filter(room__in=rooms, starts_at__lt=end, blocked_until__gt=start)
            .exclude(pk__in=own_ids or [appointment.pk])
            .select_related("therapist", "room")
            .first()
        )
        if taken is None:
            raise ValidationError(
                {"room": "No room that suits this treatment is free then (closed, or none)."}
            )
        raise ValidationError({"room": _room_clash_message(taken.room, taken)})
    appointment.room = room


def _room_clash_message(room, clash):
    local = timezone.localtime(clash.starts_at)
    return (
        f"{room} is taken then: {clash.patient_name} with {clash.therapist} at "
        f"{local:%a %b %-d, %H:%M} (until "
        f"{timezone.localtime(clash.blocked_until):%H:%M} with the buffer)."
    )


def join_waitlist(
    *,
    service,
    therapist,
    first_day,
    last_day,
    parts,
    name,
    email,
    phone,
    language,
    days=(),
    now=None,
):
    """Put a patient on the waitlist and queue their confirmation email; returns the entry.
    `days` (dates): only these days of the range suit; empty, every day of it does.

    The same person asking again for the same treatment and therapist updates their waiting
    entry (keeping their place in line) instead of adding a second one, and is sent the same
    confirmation, so the answer says nothing about whether the address was already listed.
    """
    now = now or timezone.now()
    parts = set(parts)
    with transaction.atomic():
        existing = lock(
            WaitlistEntry.objects.waiting()
            .for_email(email)
            .filter(service=service, therapist=therapist)
            .order_by("joined_at", "pk")[:1]
        )
        entry = existing[0] if existing else WaitlistEntry(service=service, therapist=therapist)
        entry.first_day, entry.last_day = first_day, last_day
        entry.days = sorted(day.isoformat() for day in days)
        entry.morning, entry.afternoon, entry.evening = (
            part in parts for part in ("morning", "afternoon", "evening")
        )
        entry.name, entry.email, entry.phone, entry.language = name, email, phone, language
        if entry.pk is None:
            entry.joined_at = now
        entry.full_clean()
        entry.save()
        write_waitlist_joined_email(entry)
    return entry


def leave_waitlist(*, entry):
    """Take an entry off the waitlist (its patient's link, or staff); safe to run twice.
    A time held for it is released and goes to the next in line."""
    with transaction.atomic():
        WaitlistEntry.objects.filter(pk=entry.pk, state=WaitlistEntry.State.WAITING).update(
            state=WaitlistEntry.State.LEFT
        )
        for hold in Hold.objects.active().filter(entry=entry):
            release_hold(hold=hold)


# --- offering freed times to the waitlist -----------------------------------------------
def record_vacancy(*, start, end, therapist_id=None, room_id=None):
    """Note that [start, end) became free with a therapist and/or in a room (a visit that
    held one, a room closure removed); once the change commits a task offers it to the
    waitlist (the beat does, if that task is lost). Must run inside the transaction of the
    change that freed it."""
    from clinic.locking import require_transaction

    from .tasks import offer_vacancy_task

    require_transaction()
    vacancy = Vacancy.objects.create(
        therapist_id=therapist_id, room_id=room_id, starts_at=start, ends_at=end
    )
    transaction.on_commit(lambda: publish_offer(offer_vacancy_task, vacancy.pk))
    return vacancy


def publish_offer(task, vacancy_id):
    """Queue the offer of a vacancy; a broker that is down is logged, never an error for
    the patient who cancelled: the beat offers vacancies left pending."""
    from kombu.exceptions import OperationalError as BrokerDown

    try:
        task.delay(vacancy_id)
    except (BrokerDown, OSError) as exc:
        logger.warning("Broker unavailable, vacancy %s left for the beat: %s", vacancy_id, exc)


def _freed_for(*, therapist_id, room_id):
    """The active therapists time freed with `therapist_id` and/or in `room_id` may go to,
    queried by id (the order every lock on them takes): the therapist's own, and with a
    room every therapist (the room may have been all they lacked)."""
    therapists = Therapist.objects.active().order_by("pk")
    if room_id is None:
        return therapists.filter(pk=therapist_id)
    return therapists


def _offers(therapists, *, therapist_id, room):
    """{therapist: [treatments]} a freed time may be offered for: any the freed therapist
    offers (their own time is free), and with a freed `room` those it may be given in.
    Never a treatment for two: one freed time cannot offer two therapists."""
    in_room = set(Service.objects.given_in(room).values_list("pk", flat=True)) if room else set()
    offers = {}
    for therapist in therapists:
        own = list(therapist.services.active().filter(for_two=False))
        if therapist.pk != therapist_id:
            own = [service for service in own if service.pk in in_room]
        if own:
            offers[therapist] = own
    return offers


def _starts_within(vacancy, therapists, now):
    """The free starts inside a vacancy, for any treatment it may be offered for (_offers),
    ascending."""
    tz = timezone.get_default_timezone()
    first = vacancy.starts_at.astimezone(tz).date()
    last = vacancy.ends_at.astimezone(tz).date()
    offers = _offers(therapists, therapist_id=vacancy.therapist_id, room=vacancy.room)
    by_service = {}
    for therapist, offered in offers.items():
        for service in offered:
            by_service.setdefault(service, []).append(therapist)
    starts = set()
    for service, whom in by_service.items():
        free = availability.free_starts(
            service=service, therapists=whom, first_day=first, last_day=last, now=now
        )
        for found in free.values():
            starts.update(s for s in found if vacancy.starts_at <= s < vacancy.ends_at)
    return sorted(starts)


def offer_vacancy(*, vacancy_id, now=None):
    """Offer a vacancy's free times to the waitlist, once; returns the holds made.

    Under the lock of the therapists it may go to (by id), then the vacancy's: a second
    run (the task retried, the beat catching up at the same moment) finds it offered and
    does nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        vacancy = Vacancy.objects.select_related("room").filter(pk=vacancy_id).first()
        if vacancy is None:
            return []
        therapists = lock(_freed_for(therapist_id=vacancy.therapist_id, room_id=vacancy.room_id))
        if not lock(Vacancy.objects.pending().filter(pk=vacancy_id)):
            return []
        holds = []
        for start in _starts_within(vacancy, therapists, now):
            hold = offer_freed_time(
                therapist_id=vacancy.therapist_id, room_id=vacancy.room_id, start=start, now=now
            )
            if hold is not None:
                holds.append(hold)
        Vacancy.objects.filter(pk=vacancy_id).update(offered_at=now)
    return holds


def offer_pending_vacancies(*, now=None):
    """Beat: offer the vacancies whose task never ran (broker or worker down); how many."""
    now = now or timezone.now()
    pending = list(Vacancy.objects.pending().values_list("pk", flat=True)[:200])
    for pk in pending:
        offer_vacancy(vacancy_id=pk, now=now)
    return len(pending)


def _lock_therapists_of(*appointments):
    """Lock the therapists of `appointments` and of the visits booked with them, in id order
    (the order every booking service takes them in)."""
    together = Q(pk__in=[])
    for appointment in appointments:
        together |= Q(pk=appointment.pk)
        if appointment.pair is not None:
            together |= Q(pair=appointment.pair)
    ids = set(Appointment.objects.filter(together).values_list("therapist_id", flat=True))
    lock(Therapist.objects.filter(pk__in=ids).order_by("pk"))


def delete_appointments(*, appointments):
    """Staff delete appointments (the admin's delete): an active one's time is offered to
    the waitlist once the deletion commits."""
    with transaction.atomic():
        _lock_therapists_of(*appointments)  # first, as cancel_appointment says
        rows = lock(Appointment.objects.filter(pk__in=[a.pk for a in appointments]).order_by("pk"))
        for row in rows:
            if row.is_active:
                record_vacancy(
                    therapist_id=row.therapist_id,
                    room_id=row.room_id,
                    start=row.starts_at,
                    end=row.blocked_until,
                )
        Appointment.objects.filter(pk__in=[row.pk for row in rows]).delete()


def remove_time_off(*, absences):
    """Staff remove time off: the time it covered is offered to the waitlist once that
    commits."""
    change_time_off(saved=[], deleted=absences)


def change_time_off(*, saved, deleted):
    """Staff add, change or remove time off (the therapist page's inline); returns the active
    visits the saved ones now cover (left as they are: staff move or cancel them, the admin
    names them). The time a removed, shortened or moved one no longer covers is offered to
    the waitlist once this commits; the engine offers only what is free then (working hours,
    no visit, no other time off), so a lengthened one offers nothing.

    The stored rows are read, locked, before anything is written: what was freed is what
    the database held, not the form's copy (a row edited and deleted in one post frees the
    time it had), and a second staff member saving the same row waits and compares against
    this save's."""
    return _change_blocks(TimeOff, "therapist", saved=saved, deleted=deleted)


def _free_period(therapist, start, now):
    """The end of the free stretch of `therapist` that begins at `start`, or None when
    `start` is not free (booked again meanwhile, held, time off)."""
    from . import slots

    tz = timezone.get_default_timezone()
    day = start.astimezone(tz).date()
    inputs = availability.load_inputs(therapists=[therapist], first_day=day, last_day=day)
    periods = slots.free_periods(
        hours=inputs.hours(therapist.pk),
        closures=inputs.closure_days(),
        first_day=day,
        last_day=day,
        tz=tz,
    )
    return next((end for begin, end in periods[day] if begin <= start < end), None)


def offer_freed_time(*, start, therapist_id=None, room_id=None, now=None):
    """Offer the free time at `start`, freed with a therapist and/or in a room, to the first
    waitlist entry it suits (or the first few, when the booking rules offer to several at
    once: first to book wins), holding it for them; returns the first in line's Hold (the
    others share its offer_round and its therapist), or None when nobody is offered it.

    A therapist's freed time may go to entries for them (or for any therapist); time freed
    in a room may go to any therapist who is free then and lacked only a room, so the
    entries for each of them are in line together, in join order. The engine decides what
    is free (therapist and room); the hold keeps both.

    Runs under the lock of those therapists (by id) and of the rooms, so it cannot race a
    booking of that time, and re-reads everything: a time booked, held or offered meanwhile
    is left alone. An entry is never offered one time twice (a unique constraint), so a
    second run (a retried task, beat and a worker at once) offers it to nobody new. The
    offer email is written in the same transaction as the hold.
    """
    from .emails import write_waitlist_offer_email
    from .waitlist import FreedTime, in_line

    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    rules = BookingRules.current()
    with transaction.atomic():
        therapists = lock(_freed_for(therapist_id=therapist_id, room_id=room_id))
        # Every bookable room, locked by id after the therapists as bookings lock them: a
        # hold takes a room when its treatment needs one.
        rooms = lock(Room.objects.bookable().order_by("pk"))
        room = next((r for r in rooms if r.pk == room_id), None)
        if room_id is not None and room is None and therapist_id is None:
            return None  # the room is no longer bookable: nothing was freed
        # The freed therapist first, so an entry for any therapist takes their time before
        # another's free time.
        therapists = sorted(therapists, key=lambda t: t.pk != therapist_id)
        offers = _offers(therapists, therapist_id=therapist_id, room=room)
        freed_times = []
        for therapist, offered in offers.items():
            end = _free_period(therapist, start, now)
            if end is not None:
                durations = {s.pk: s.duration + s.buffer for s in offered}
                freed_times.append(FreedTime(therapist.pk, start, end, durations))
        if not freed_times:
            return None
        services = {s.pk for offered in offers.values() for s in offered}
        day = start.astimezone(tz).date()
        entries = {
            entry.pk: entry
            for entry in WaitlistEntry.objects.waiting()
            .filter(service__in=services, first_day__lte=day, last_day__gte=day)
            .filter(Q(therapist__isnull=True) | Q(therapist__in=[t.pk for t in offers]))
            # Never the same time twice to one entry; one offer at a time to each.
            .exclude(Exists(Hold.objects.filter(entry=OuterRef("pk"), starts_at=start)))
            .exclude(Exists(Hold.objects.active().filter(entry=OuterRef("pk"))))
            .select_related("service")
        }
        wishes = [entry.for_matching() for entry in entries.values()]
        by_pk = {therapist.pk: therapist for therapist in offers}
        chosen, with_whom, free_for = [], None, {}
        for wish, suiting in in_line(freed_times, wishes, tz=tz, now=now, notice=rules.min_notice):
            entry = entries[wish.entry_id]
            for pk in suiting if with_whom is None else [p for p in suiting if p == with_whom]:
                if (entry.service_id, pk) not in free_for:
                    free = availability.free_starts(
                        service=entry.service,
                        therapists=[by_pk[pk]],
                        first_day=day,
                        last_day=day,
                        now=now,
                        rules=rules,
                    )
                    free_for[entry.service_id, pk] = start in set(free.get(pk, ()))
                if free_for[entry.service_id, pk]:
                    # A round offers one therapist's time: the first in line's.
                    chosen.append(entry)
                    with_whom = pk
                    break
            if len(chosen) == rules.waitlist_offer_to:
                break
        if not chosen:
            return None
        offer_round = new_offer_round()
        holds = [
            Hold(
                entry=entry,
                therapist=by_pk[with_whom],
                service=entry.service,
                room=_room_for_hold(entry.service, start, now),
                starts_at=start,
                blocked_until=start + entry.service.duration + entry.service.buffer,
                expires_at=now + rules.waitlist_hold,
                created_at=now,
                offer_round=offer_round,
            )
            for entry in chosen
        ]
        try:
            with transaction.atomic():
                for hold in holds:
                    hold.save()
        except IntegrityError:
            return None  # offered meanwhile by another run: that one stands
        for hold in holds:
            write_waitlist_offer_email(hold, shared_with=len(holds))
        return holds[0]


def _room_for_hold(service, start, now):
    """The room a hold of `start` for `service` keeps (None when it needs none)."""
    rooms = availability.rooms_for(service)
    if rooms is None:
        return None
    return availability.free_room(service=service, rooms=rooms, start=start, now=now)


def end_expired_holds(*, now=None):
    """Beat: end the holds whose time ran out unclaimed and offer each time to the next in
    line; returns how many ended. Safe to run twice or in two workers at once: each hold is
    ended by one conditional UPDATE, and an entry is never offered one time twice."""
    now = now or timezone.now()
    ended = 0
    for hold in list(Hold.objects.expired(now).order_by("expires_at", "pk")):
        # The therapist first, as booking locks: ending a hold and offering its time to the
        # next commit together, so a worker that dies between them leaves the hold to retry.
        with transaction.atomic():
            # Every therapist its time may go to (a held room's: any), by id as booking does.
            lock(_freed_for(therapist_id=hold.therapist_id, room_id=hold.room_id))
            won = Hold.objects.filter(pk=hold.pk, state=Hold.State.ACTIVE).update(
                state=Hold.State.EXPIRED
            )
            if won:
                ended += 1
                offer_freed_time(
                    therapist_id=hold.therapist_id,
                    room_id=hold.room_id,
                    start=hold.starts_at,
                    now=now,
                )
    return ended


def release_hold(*, hold, now=None):
    """Staff end a hold before its time; the time is offered to the next in line. Returns
    whether this call released it."""
    now = now or timezone.now()
    with transaction.atomic():
        released = Hold.objects.filter(pk=hold.pk, state=Hold.State.ACTIVE).update(
            state=Hold.State.RELEASED
        )
        if released:
            record_vacancy(
                therapist_id=hold.therapist_id,
                room_id=hold.room_id,
                start=hold.starts_at,
                end=hold.blocked_until,
            )
    return bool(released)


def record_freed_by_staff_edit(*, before, after):
    """Staff changed an appointment in the admin: if that freed its old time (cancelled,
    moved, given to another therapist or room), offer the time to the waitlist. Must run
    inside the admin's transaction, with `before` read before the save."""
    if before is None or not before.is_active:
        return None
    kept = (
        after.is_active
        and after.therapist_id == before.therapist_id
        and after.room_id == before.room_id
        and after.starts_at <= before.starts_at
        and after.blocked_until >= before.blocked_until
    )
    if kept:
        return None
    return record_vacancy(
        therapist_id=before.therapist_id,
        room_id=before.room_id,
        start=before.starts_at,
        end=before.blocked_until,
    )


def record_hours_added(*, intervals, now=None):
    """Staff added or widened working hours: each day they fall on from today to the last
    bookable day is offered to the waitlist. Must run inside the admin's transaction."""
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    rules = BookingRules.current()
    today = now.astimezone(tz).date()
    for interval in intervals:
        for offset in range(rules.max_days_ahead + 1):
            day = today + timedelta(days=offset)
            if day.weekday() != interval.weekday:
                continue
            start = datetime.combine(day, interval.opens, tzinfo=tz)
            end = datetime.combine(day, interval.closes, tzinfo=tz)
            if end > now:
                record_vacancy(therapist_id=interval.therapist_id, start=start, end=end)


def reset_calendar_feed(*, therapist):
    """Give the therapist's calendar feed a new secret URL and return its token; the old URL
    (if any) answers 404 from now on. Also how the first link is made."""
    import secrets

    token = secrets.token_urlsafe(32)
    # An update, not save(): the token is on no public page, so the page cache stays valid.
    Therapist.objects.filter(pk=therapist.pk).update(calendar_token=token)
    therapist.calendar_token = token
    return token


def end_calendar_feed(*, therapist):
    """Forget the therapist's calendar feed secret: its URL answers 404 and no new one
    exists until someone asks for a link again (their staff login was unlinked)."""
    Therapist.objects.filter(pk=therapist.pk).update(calendar_token=None)
    therapist.calendar_token = None


# --- rooms ----------------------------------------------------------------------------------
def save_room(*, room):
    """Staff add or change a room (the one place rooms are written, so whatever must follow
    a change of the schedule's inputs can follow it here)."""
    with transaction.atomic():
        room.full_clean()
        room.save()
    return room


def change_room_closures(*, saved, deleted):
    """Staff add, change or remove room closures; returns the active visits the saved ones
    now cover (left as they are: staff move them, the admin names them). The time a closure
    removed, shortened or moved no longer covers is offered to the waitlist once this
    commits. As in change_time_off, the stored rows are read, locked, first: what is freed
    is what the database held, not the form's copy (a row edited and deleted in one post)."""
    return _change_blocks(RoomClosure, "room", saved=saved, deleted=deleted)


def _change_blocks(model, owner, *, saved, deleted):
    """change_time_off and change_room_closures: `model`'s rows block their `owner` (a
    therapist or a room). The stored rows are read, locked, first; a deleted row frees the
    time it held, a changed one the part it no longer covers; returns the active visits the
    saved rows now cover."""
    with transaction.atomic():
        ids = [row.pk for row in [*deleted, *saved] if row.pk is not None]
        stored = {row.pk: row for row in lock(model.objects.filter(pk__in=ids).order_by("pk"))}
        for gone in deleted:
            row = stored.get(gone.pk)
            if row is not None:  # already gone: another save removed it and freed its time
                record_vacancy(
                    **{f"{owner}_id": getattr(row, f"{owner}_id")},
                    start=row.starts_at,
                    end=row.ends_at,
                )
                row.delete()
        for row in saved:
            row.full_clean()
            row.save()
            before = stored.get(row.pk)
            if before is not None:
                for begins, ends in _uncovered(before, row, owner=f"{owner}_id"):
                    record_vacancy(
                        **{f"{owner}_id": getattr(before, f"{owner}_id")}, start=begins, end=ends
                    )
        covered = Q(pk__in=[])
        for row in saved:
            covered |= Q(**{owner: getattr(row, f"{owner}_id")}, starts_at__lt=row.ends_at) & Q(
                blocked_until__gt=row.starts_at
            )
        return list(
            Appointment.objects.active().filter(covered).select_related("room", "therapist")
        )


def _uncovered(before, after, *, owner):
    """The stretches of `before` (a room closure or time off) that `after` (the same row,
    changed) no longer covers: all of it when it moved to another `owner` (room_id,
    therapist_id)."""
    if getattr(after, owner) != getattr(before, owner):
        return [(before.starts_at, before.ends_at)]
    parts = [
        (before.starts_at, min(before.ends_at, after.starts_at)),
        (max(before.starts_at, after.ends_at), before.ends_at),
    ]
    return [(begins, ends) for begins, ends in parts if begins < ends]
