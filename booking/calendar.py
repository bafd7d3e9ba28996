"""An appointment as an iCalendar file (RFC 5545), made with the icalendar package."""

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from clinic.templatetags.clinic_tags import tr


def appointment_uid(appointment):
    """A stable UID that names no database id: the same for every update of the visit."""
    digest = hashlib.sha256(appointment.public_token.encode()).hexdigest()[:32]
    return f"{digest}@{urlsplit(settings.SITE_URL).hostname}"


def appointment_ics(appointment, *, sequence=0, cancelled=False):
    """The visit in the clinic's time zone (with its VTIMEZONE) and address as location."""
    from clinic.services import get_clinic_profile

    profile = get_clinic_profile()
    tz = timezone.get_default_timezone()
    calendar = Calendar()
    calendar.add("prodid", "-//Clinic site//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
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
        % {"service": tr(appointment.service, "name"), "clinic": clinic_name or _("the clinic")},
    )
    if profile:
        event.add("location", profile.address_line)
        event.add(
            "description",
            _("With %(therapist)s. To change or cancel, call %(phone)s.")
            % {"therapist": appointment.therapist.name, "phone": profile.phone},
        )
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical().decode()
