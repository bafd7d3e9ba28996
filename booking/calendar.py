"""An appointment as an iCalendar file (RFC 5545), made with the icalendar package.

Emailed files are iTIP messages (RFC 5546) sent by iMIP (RFC 6047): the clinic is the
ORGANIZER and the patient the one ATTENDEE. A booking or a move is a REQUEST and a
cancellation a CANCEL with the same UID and a higher SEQUENCE: that pair is what the
calendar apps that process invitations (Gmail, Outlook, Apple Calendar) track, so a cancelled
or moved visit is updated in the patient's calendar rather than left there. The file the
patient downloads from the confirmation page is a plain PUBLISH (organizer, no attendee).
The README explains the choice.
"""

import hashlib
from datetime import UTC, date, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from clinic.i18n import money, translated


def appointment_uid(appointment):
    """A stable UID that names no database id: the same for every update of the visit."""
    digest = hashlib.sha256(appointment.public_token.encode()).hexdigest()[:32]
    return f"{digest}@{urlsplit(settings.SITE_URL).hostname}"


def calendar_method(*, cancelled=False, invitation=True):
    """The iTIP method of the file: CANCEL, REQUEST (emailed) or PUBLISH (downloaded)."""
    if cancelled:
        return "CANCEL"
    return "REQUEST" if invitation else "PUBLISH"


def calendar_mimetype(**kwargs):
    """The email part's content type; RFC 6047 wants its method= to match the METHOD."""
    return f"text/calendar; method={calendar_method(**kwargs)}"


def _organizer(profile):
    """The clinic as mailto: address with its name (CN): the profile's email, else the sender."""
    address = (profile.email if profile else "") or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    organizer = vCalAddress(f"mailto:{address}")
    organizer.params["cn"] = vText(profile.name if profile else _("the clinic"))
    return organizer


def _attendee(appointment, method):
    attendee = vCalAddress(f"mailto:{appointment.patient_email}")
    attendee.params["cn"] = vText(appointment.patient_name)
    attendee.params["cutype"] = vText("INDIVIDUAL")
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    if method == "REQUEST":
        # The patient booked it themselves: nothing to answer, so apps need not ask for a reply.
        attendee.params["partstat"] = vText("ACCEPTED")
        attendee.params["rsvp"] = vText("FALSE")
    return attendee


def _description(appointment, profile):
    """Treatment, duration, price and therapist, then how to change it, in the active language."""
    service = appointment.service
    parts = [
        translated(service, "name"),
        ngettext("%(minutes)s minute", "%(minutes)s minutes", service.duration_minutes)
        % {"minutes": service.duration_minutes},
    ]
    if appointment.price is not None:
        parts.append(money(appointment.price))
    text = _("%(visit)s, with %(therapist)s.") % {
        "visit": ", ".join(parts),
        "therapist": appointment.therapist_names,
    }
    if profile:
        text += " " + _("To change or cancel, call %(phone)s.") % {"phone": profile.phone}
    return text


def clinic_vtimezone(tz, around):
    """The clinic's zone as a VTIMEZONE for the years around `around`, one RDATE per line.

    icalendar writes every clock change since 1970 as one long multi-valued RDATE; some
    readers keep only its first value (vobject does) and then put a summer visit an hour
    off. A few years, each change on its own line, is read the same by all of them.
    RFC 5545 gives each onset in the local time before the change (02:00 for spring-forward
    in the US); icalendar gives the first wall-clock time after a forward jump (03:00), so
    those are moved back by the jump.
    """
    vtimezone = Timezone.from_tzinfo(
        tz, first_date=date(around.year - 1, 1, 1), last_date=date(around.year + 2, 1, 1)
    )
    for part in vtimezone.subcomponents:
        jump = part["TZOFFSETTO"].td - part["TZOFFSETFROM"].td
        shift = jump if jump > timedelta(0) else timedelta(0)
        rdates = part.pop("RDATE", None)
        onsets = [part.pop("DTSTART").dt]
        for rdate in rdates if isinstance(rdates, list) else [rdates] if rdates else []:
            onsets += [moment.dt for moment in rdate.dts]
        part.add("DTSTART", onsets[0] - shift)
        for onset in onsets[1:]:
            part.add("RDATE", onset - shift)
    return vtimezone


def appointment_ics(appointment, *, sequence=0, cancelled=False, invitation=True):
    """The visit in the clinic's time zone (with its VTIMEZONE) and address as location.

    `invitation` (an emailed file) makes a booked or moved visit a REQUEST naming the
    patient as attendee; without it (the download) it is a PUBLISH. A cancelled visit is
    always a CANCEL naming the attendee, as RFC 5546 asks.
    """
    from clinic.services import get_clinic_profile

    profile = get_clinic_profile()
    tz = timezone.get_default_timezone()
    method = calendar_method(cancelled=cancelled, invitation=invitation)
    calendar = Calendar()
    calendar.add("prodid", "-//Clinic site//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(clinic_vtimezone(tz, appointment.starts_at.astimezone(tz)))
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("sequence", sequence)
    event.add("dtstamp", timezone.now())
    event.add("dtstart", appointment.starts_at.astimezone(tz))
    event.add("dtend", appointment.ends_at.astimezone(tz))
    clinic_name = profile.name if profile else ""
    event.add(
        "summary",
        _("%(service)s at %(clinic)s")
        % {
            "service": translated(appointment.service, "name"),
            "clinic": clinic_name or _("the clinic"),
        },
    )
    if profile:
        event.add("location", profile.address_line)
    event.add("description", _description(appointment, profile))
    event.add("organizer", _organizer(profile))
    if method != "PUBLISH":
        event.add("attendee", _attendee(appointment, method))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    calendar.add_component(event)
    return calendar.to_ical().decode()


# --- a therapist's own calendar feed --------------------------------------------------------
# Subscribed to from a phone's calendar app by a secret URL (Therapist.calendar_token). It
# names each patient by initials only and carries nothing else about them: no email, phone,
# notes or health answers, since a calendar app syncs it to servers the clinic never chose.
FEED_REFRESH = timedelta(minutes=15)


def initials(name):
    """'Pat Q. Example' -> 'P.E.': the first and last words' first letters, upper case."""
    words = [word for word in name.split() if word[:1].isalnum()]
    if not words:
        return "?"
    picked = words[:1] + words[1:][-1:]
    return "".join(f"{word[0].upper()}." for word in picked)


def therapist_feed_ics(therapist, appointments, *, now):
    """The therapist's visits as one PUBLISH calendar. Times are UTC, which every reader
    agrees on (the phone shows its own zone); a cancelled visit stays, as STATUS:CANCELLED
    (and TRANSPARENT: the time is free again), so the therapist sees that it was cancelled
    rather than a visit silently vanishing."""
    from clinic.services import get_clinic_profile

    profile = get_clinic_profile()
    clinic_name = profile.name if profile else "Clinic"
    calendar = Calendar()
    calendar.add("prodid", "-//Clinic site//Therapist feed//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{clinic_name}: {therapist.name}")
    calendar.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", FEED_REFRESH)
    for appointment in appointments:
        cancelled = appointment.status == appointment.Status.CANCELLED
        event = Event()
        event.add("uid", appointment_uid(appointment))
        event.add("sequence", appointment.sequence)  # cancelling and moving raise it
        event.add("dtstamp", now)
        event.add("dtstart", appointment.starts_at.astimezone(UTC))
        event.add("dtend", appointment.ends_at.astimezone(UTC))
        summary = f"{appointment.service.name} · {initials(appointment.patient_name)}"
        event.add("summary", f"Cancelled: {summary}" if cancelled else summary)
        if profile:
            event.add("location", profile.address_line)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
        calendar.add_component(event)
    return calendar.to_ical().decode()
