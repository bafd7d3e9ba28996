"""The booking steps: service → therapist → day → time → details → confirmation.

Each step is a plain, bookmarkable GET page (no JavaScript, no session): what was chosen
so far lives in the URL. Only the details step writes, through services.book_appointment.
"""

import calendar
import uuid
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django_ratelimit.decorators import ratelimit

from . import services, slots
from .calendar import appointment_ics
from .forms import DetailsForm
from .models import Appointment, BookingRules, Service, Therapist

ANY = "any"
NEARBY_DAYS = 3


def booking_rate(group, request):
    return settings.BOOKING_RATE_LIMIT


def rate_limited(request, exception):
    """django-ratelimit's view: a friendly 429 with the clinic's phone."""
    return render(request, "429.html", status=429)


def _unavailable(request, message, *, status, back_url=None, back_label=None, nearby=None):
    return render(
        request,
        "booking/unavailable.html",
        {
            "message": message,
            "back_url": back_url or reverse("booking:start"),
            "back_label": back_label or _("Start again"),
            "nearby": nearby or [],
        },
        status=status,
    )


def _label(start):
    return dateformat.format(timezone.localtime(start), "l, F j, g:i A")


def _selection(service_slug, therapist_slug):
    """(service, chosen therapist or None, the therapists offering it); 404 if unknown."""
    service = get_object_or_404(Service.objects.active(), slug=service_slug)
    offering = list(Therapist.objects.offering(service))
    if therapist_slug == ANY:
        return service, None, offering
    therapist = next((t for t in offering if t.slug == therapist_slug), None)
    if therapist is None:
        raise Http404("No such therapist for this service")
    return service, therapist, [therapist]


def _step_context(service, therapist, step, **extra):
    return {
        "service": service,
        "therapist": therapist,
        "therapist_slug": therapist.slug if therapist else ANY,
        "step": step,
        "steps": 5,
        "zone_name": dateformat.format(timezone.localtime(), "T"),
        **extra,
    }


@require_safe
def choose_service(request):
    services_offered = Service.objects.active().filter(therapists__is_active=True).distinct()
    return render(
        request, "booking/service.html", {"services": services_offered, "step": 1, "steps": 5}
    )


@require_safe
def choose_therapist(request, service):
    service, _chosen, offering = _selection(service, ANY)
    return render(
        request,
        "booking/therapist.html",
        _step_context(service, None, 2, therapists=offering),
    )


def _month_from(request, today, last_day):
    raw = request.GET.get("month", "")
    if not raw:
        return date(today.year, today.month, 1), None
    try:
        month = datetime.strptime(raw[:7], "%Y-%m").date() if len(raw) == 7 else None
    except ValueError:
        month = None
    if month is None:
        return None, _("We could not read that month. Pick a day from the calendar.")
    if month < date(today.year, today.month, 1) or month > last_day:
        return None, _("Online booking is open up to %(day)s. Pick a day in that time.") % {
            "day": dateformat.format(last_day, "F j, Y")
        }
    return month, None


@require_safe
def choose_day(request, service, therapist):
    service, therapist, therapists = _selection(service, therapist)
    rules = BookingRules.current()
    tz = services.clinic_zone()
    now = timezone.now()
    today = timezone.localdate(now)
    last_day = slots.last_bookable_day(rules=rules.for_engine(), now=now, tz=tz)
    month, problem = _month_from(request, today, last_day)
    if problem:
        return _unavailable(
            request,
            problem,
            status=400,
            back_url=request.path,
            back_label=_("Show this month"),
        )
    month_end = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    free = services.free_starts(
        service=service,
        therapists=therapists,
        first_day=max(month, today),
        last_day=min(month_end, last_day),
        now=now,
        rules=rules,
    )
    merged = slots.merge_therapists(free)
    free_days = slots.group_by_day(merged, tz)
    weeks = calendar.Calendar(firstweekday=6).monthdatescalendar(month.year, month.month)
    previous_month = (month - timedelta(days=1)).replace(day=1)
    next_month = month_end + timedelta(days=1)
    context = _step_context(
        service,
        therapist,
        3,
        month=month,
        weeks=[
            [
                {
                    "day": day,
                    "in_month": day.month == month.month,
                    "free": len(free_days.get(day, ())),
                }
                for day in week
            ]
            for week in weeks
        ],
        weekday_names=[dateformat.format(day, "D") for day in weeks[0]],
        weekday_full=[dateformat.format(day, "l") for day in weeks[0]],
        previous_month=previous_month
        if previous_month >= date(today.year, today.month, 1)
        else None,
        next_month=next_month if next_month <= last_day else None,
        first_free=next(iter(merged), None),
        last_day=last_day,
    )
    return render(request, "booking/day.html", context)


def _day_problem(day, rules, now):
    if not slots.is_valid_day(day, rules=rules.for_engine(), now=now, tz=services.clinic_zone()):
        last = slots.last_bookable_day(rules=rules.for_engine(), now=now, tz=services.clinic_zone())
        return _("Online booking is open from today up to %(day)s. Pick a day in that time.") % {
            "day": dateformat.format(last, "F j, Y")
        }
    return None


@require_safe
def choose_time(request, service, therapist, day):
    service, therapist, therapists = _selection(service, therapist)
    rules = BookingRules.current()
    now = timezone.now()
    day_url = reverse("booking:day", args=[service.slug, therapist.slug if therapist else ANY])
    problem = _day_problem(day, rules, now)
    if problem:
        return _unavailable(
            request, problem, status=400, back_url=day_url, back_label=_("Back to the calendar")
        )
    free = services.free_starts(
        service=service, therapists=therapists, first_day=day, last_day=day, now=now, rules=rules
    )
    times = [
        {"start": start, "local": timezone.localtime(start)}
        for start in slots.merge_therapists(free)
    ]
    context = _step_context(
        service,
        therapist,
        4,
        day=day,
        times=times,
        day_url=f"{day_url}?month={day:%Y-%m}",
    )
    return render(request, "booking/time.html", context)


def _nearby(service, therapists, start, now, rules, exclude=None):
    """Free starts near `start` (the same day and the next few), closest first."""
    day = timezone.localtime(start).date()
    free = services.free_starts(
        service=service,
        therapists=therapists,
        first_day=day,
        last_day=day + timedelta(days=NEARBY_DAYS),
        now=now,
        rules=rules,
    )
    starts = [s for s in slots.merge_therapists(free) if s != exclude]
    return slots.nearest(starts, start)


def _details_url(service, therapist, start):
    local = timezone.localtime(start)
    return reverse(
        "booking:details",
        args=[service.slug, therapist.slug if therapist else ANY, local.date(), local.time()],
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
def details(request, service, therapist, day, at):
    service, therapist, therapists = _selection(service, therapist)
    rules = BookingRules.current()
    now = timezone.now()
    tz = services.clinic_zone()
    therapist_slug = therapist.slug if therapist else ANY
    times_url = reverse("booking:time", args=[service.slug, therapist_slug, day])
    problem = _day_problem(day, rules, now)
    if problem:
        return _unavailable(
            request,
            problem,
            status=400,
            back_url=reverse("booking:day", args=[service.slug, therapist_slug]),
            back_label=_("Back to the calendar"),
        )
    start = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    nearby = _nearby(service, therapists, start, now, rules)

    def choices(extra=()):
        offered = [start, *extra] if start not in extra else list(extra)
        return [(s.isoformat(), _label(s)) for s in offered]

    context = _step_context(service, therapist, 5, start=start, times_url=times_url, rules=rules)
    if request.method != "POST":
        if start not in nearby:
            return _unavailable(
                request,
                _("Sorry, %(time)s is not free. These times near it are:")
                % {"time": _label(start)},
                status=409,
                back_url=times_url,
                back_label=_("See the other times that day"),
                nearby=[(s, _details_url(service, therapist, s)) for s in nearby],
            )
        form = DetailsForm(
            slot_choices=choices(),
            initial={"slot": start.isoformat(), "submission_key": uuid.uuid4().hex},
        )
        return render(request, "booking/details.html", {**context, "form": form})

    form = DetailsForm(request.POST, slot_choices=choices(nearby))
    if not form.is_valid():
        if "submission_key" in form.errors:
            # A damaged key: hand out a fresh one, so the next submit can go through.
            data = request.POST.copy()
            data["submission_key"] = uuid.uuid4().hex
            form.data = data
        return render(request, "booking/details.html", {**context, "form": form}, status=400)
    chosen = datetime.fromisoformat(form.cleaned_data["slot"])
    patient = services.Patient(
        name=form.cleaned_data["name"],
        email=form.cleaned_data["email"],
        phone=form.cleaned_data["phone"],
        notes=form.cleaned_data["notes"],
    )
    try:
        appointment = services.book_appointment(
            service=service,
            therapist=therapist,
            start=chosen,
            patient=patient,
            submission_key=form.cleaned_data["submission_key"],
            now=now,
        )
    except services.SlotUnavailable as exc:
        fresh = _nearby(service, therapists, chosen, timezone.now(), rules, exclude=chosen)
        data = request.POST.copy()
        data["slot"] = ""
        form = DetailsForm(
            data, slot_choices=[(s.isoformat(), _label(s)) for s in fresh], offer_times=True
        )
        form.is_valid()
        form.errors.pop("slot", None)
        return render(
            request,
            "booking/details.html",
            {**context, "form": form, "taken": str(exc), "fresh": fresh},
            status=409,
        )
    return redirect("booking:confirmation", token=appointment.public_token, permanent=False)


def _appointment_by_token(token):
    if len(token) > 64:
        raise Http404
    return get_object_or_404(
        Appointment.objects.select_related("service", "therapist"), public_token=token
    )


def _private(response):
    """A page with a patient's details: never stored by a cache, never indexed."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
def confirmation(request, token):
    appointment = _appointment_by_token(token)
    return _private(
        render(
            request,
            "booking/confirmation.html",
            {
                "appointment": appointment,
                "rules": BookingRules.current(),
                "zone_name": dateformat.format(timezone.localtime(appointment.starts_at), "T"),
            },
        )
    )


@require_safe
def calendar_file(request, token):
    appointment = _appointment_by_token(token)
    response = HttpResponse(
        appointment_ics(appointment), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="appointment.ics"'
    return _private(response)
