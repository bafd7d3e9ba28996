"""The booking steps: service → therapist → day → time → details → confirmation, and the
patient's manage pages (cancel, or move to another free time) reached from a signed link.

Each step is a plain, bookmarkable GET page (no JavaScript, no session): what was chosen
so far lives in the URL, and so does the article a patient came from (`?from=<slug>`).
Only POSTs write, through booking.services.
"""

import calendar
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.validators import slug_re
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django_ratelimit.decorators import ratelimit

from articles.models import Article
from clinic.locking import Busy
from clinic.models import Closure

from . import availability, links, services, slots
from .calendar import appointment_ics
from .forms import CancelForm, DetailsForm
from .models import Appointment, BookingRules, Service, Therapist, WorkingHours

ANY = "any"
PUBLIC_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
NEARBY_DAYS = 3
# The browser that booked remembers what it booked (the confirmation links' tokens, signed),
# so Back to the details step says "You have booked this time" to it and to nobody else.
BOOKED_COOKIE = "booked"
BOOKED_SALT = "booking.views.booked"
BOOKED_KEEP = 5
BOOKED_SECONDS = 24 * 60 * 60


def booking_rate(group, request):
    return settings.BOOKING_RATE_LIMIT


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
    return dateformat.format(timezone.localtime(start), _("l, F j, g:i A"))


def _private(response):
    """A page with a patient's details: never stored by a cache, never indexed."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- what this browser just booked ----------------------------------------------------------
def _booked_tokens(request):
    raw = request.get_signed_cookie(
        BOOKED_COOKIE, default="", salt=BOOKED_SALT, max_age=BOOKED_SECONDS
    )
    tokens = [t for t in raw.split(",") if len(t) <= 64 and PUBLIC_TOKEN.fullmatch(t)]
    return tokens[:BOOKED_KEEP]


def _remember_booked(request, response, appointment):
    """Let this browser, and only it, recognise the time it booked when it comes Back."""
    token = appointment.public_token
    tokens = [token, *(t for t in _booked_tokens(request) if t != token)][:BOOKED_KEEP]
    response.set_signed_cookie(
        BOOKED_COOKIE,
        ",".join(tokens),
        salt=BOOKED_SALT,
        max_age=BOOKED_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


def _just_booked(request, service, therapist, start):
    """The booking this browser made of `start` (with `therapist`, if one was chosen), or None."""
    tokens = _booked_tokens(request)
    if not tokens:
        return None
    found = Appointment.objects.active().filter(
        public_token__in=tokens, service=service, starts_at=start
    )
    if therapist is not None:
        found = found.filter(therapist=therapist)
    return found.select_related("therapist").first()


# --- where the patient came from ------------------------------------------------------------
def _source_article(request):
    """The published article named by ?from= (or the form's `source`); None if not one."""
    slug = request.POST.get("source") or request.GET.get("from") or ""
    # Only a slug's characters reach the query: PostgreSQL refuses a NUL in a string.
    if len(slug) > 200 or not slug_re.match(slug):
        return None
    return Article.objects.published().filter(slug=slug).only("pk", "slug", "title").first()


def _carry(article, **params):
    """A query string that carries the source article (and `params`) to the next step."""
    if article is not None:
        params["from"] = article.slug
    return f"?{urlencode(params)}" if params else ""


# --- the steps ------------------------------------------------------------------------------
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


def _zone_name(moment=None):
    """PST or PDT at `moment` (now if None). Not Django's "T" format: it is blank all through
    the hour that repeats at fall-back."""
    return timezone.localtime(moment).tzname()


def _zone_of(extra):
    """The zone of the time or day a step shows (a day's noon), else of now."""
    if extra.get("start") is not None:
        return _zone_name(extra["start"])
    if extra.get("day") is not None:
        noon = datetime.combine(extra["day"], time(12), tzinfo=timezone.get_default_timezone())
        return _zone_name(noon)
    return _zone_name()


def _step_context(service, therapist, step, article, **extra):
    return {
        "service": service,
        "therapist": therapist,
        "therapist_slug": therapist.slug if therapist else ANY,
        "step": step,
        "steps": 5,
        "zone_name": _zone_of(extra),
        "carry": _carry(article),
        "source_article": article,
        **extra,
    }


@require_safe
def choose_service(request):
    article = _source_article(request)
    offered = Service.objects.bookable()
    # ?therapist=<slug> (the home page's therapists): their treatments, each straight to
    # that therapist's calendar. An unknown or unbookable one shows every treatment.
    chosen = None
    slug = request.GET.get("therapist", "")
    if slug and len(slug) <= 120 and slug_re.match(slug):
        chosen = Therapist.objects.active().filter(slug=slug).first()
    if chosen is not None:
        offered = offered.filter(therapists=chosen)
    return render(
        request,
        "booking/service.html",
        {
            "services": offered,
            "chosen_therapist": chosen,
            "step": 1,
            "steps": 5,
            "carry": _carry(article),
        },
    )


@require_safe
def choose_therapist(request, service):
    service, _chosen, offering = _selection(service, ANY)
    article = _source_article(request)
    return render(
        request,
        "booking/therapist.html",
        _step_context(service, None, 2, article, therapists=offering),
    )


def _month_from(request, today, last_day):
    raw = request.GET.get("month", "")
    if not raw:
        return date(today.year, today.month, 1), None
    try:
        month = datetime.strptime(raw, "%Y-%m").date() if len(raw) == 7 else None
    except ValueError:
        month = None
    if month is None:
        return None, _("We could not read that month. Pick a day from the calendar.")
    if month < date(today.year, today.month, 1) or month > last_day:
        return None, _("Online booking is open up to %(day)s. Pick a day in that time.") % {
            "day": dateformat.format(last_day, _("F j, Y"))
        }
    return month, None


def _day_state(day, *, today, last_day, free, worked, closed):
    """What the month says about one day, in words as well as colour: free, past, fully
    booked, closed (nobody works then, or a clinic closure) or not bookable yet."""
    if day < today:
        return "past"
    if day > last_day:
        return "later"
    if free:
        return "free"
    if day.weekday() not in worked or any(first <= day <= last for first, last in closed):
        return "closed"
    return "full"


def _month(request, *, service, therapists, day_url, first_url, carry_params, ignoring=None):
    """The month view's context (free days link to day_url(day), the soonest free time to
    first_url(start)), or a 400 response."""
    rules = BookingRules.current()
    tz = timezone.get_default_timezone()
    now = timezone.now()
    today = timezone.localdate(now)
    last_day = slots.last_bookable_day(rules=rules.for_engine(), now=now, tz=tz)
    month, problem = _month_from(request, today, last_day)
    if problem:
        return None, _unavailable(
            request,
            problem,
            status=400,
            back_url=request.path + (f"?{urlencode(carry_params)}" if carry_params else ""),
            back_label=_("Show this month"),
        )
    while True:
        month_end = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        free = availability.free_starts(
            service=service,
            therapists=therapists,
            first_day=max(month, today),
            last_day=min(month_end, last_day),
            now=now,
            rules=rules,
            ignoring=ignoring,
        )
        merged = slots.merge_therapists(free)
        # Late on a month's last day nothing in it is free any more: unless the patient
        # asked for this month, open on the next one rather than on a month of nothing.
        if merged or request.GET.get("month") or month_end >= last_day or month > today:
            break
        month = month_end + timedelta(days=1)
    free_days = slots.group_by_day(merged, tz)
    weeks = calendar.Calendar(firstweekday=6).monthdatescalendar(month.year, month.month)
    previous_month = (month - timedelta(days=1)).replace(day=1)
    next_month = month_end + timedelta(days=1)

    def month_link(first):
        return "?" + urlencode({"month": f"{first:%Y-%m}", **carry_params})

    first_free = next(iter(merged), None)
    # Two queries whatever the size of the clinic: tells a fully booked day from a closed one.
    worked = WorkingHours.objects.filter(therapist__in=therapists).weekdays()
    closed = list(Closure.objects.covering(month, month_end).values_list("starts_on", "ends_on"))

    def state(day):
        return _day_state(
            day,
            today=today,
            last_day=last_day,
            free=bool(free_days.get(day)),
            worked=worked,
            closed=closed,
        )

    return {
        "month": month,
        "weeks": [
            [
                {
                    "day": day,
                    "in_month": day.month == month.month,
                    "free": len(free_days.get(day, ())),
                    "url": day_url(day) if free_days.get(day) else "",
                    "state": state(day),
                }
                for day in week
            ]
            for week in weeks
        ],
        "weekday_names": [dateformat.format(day, "D") for day in weeks[0]],
        "weekday_full": [dateformat.format(day, "l") for day in weeks[0]],
        "previous_month_url": month_link(previous_month)
        if previous_month >= date(today.year, today.month, 1)
        else "",
        "next_month_url": month_link(next_month) if next_month <= last_day else "",
        "first_free": first_free,
        "first_free_url": first_url(first_free) if first_free else "",
        "last_day": last_day,
    }, None


@require_safe
def choose_day(request, service, therapist):
    service, therapist, therapists = _selection(service, therapist)
    article = _source_article(request)
    therapist_slug = therapist.slug if therapist else ANY
    carry = _carry(article)

    def day_url(day):
        return reverse("booking:time", args=[service.slug, therapist_slug, day]) + carry

    month, problem = _month(
        request,
        service=service,
        therapists=therapists,
        day_url=day_url,
        # The soonest free time leads straight to its details step, as it says.
        first_url=lambda start: _details_url(service, therapist, start, carry),
        carry_params={"from": article.slug} if article else {},
    )
    if problem:
        return problem
    context = _step_context(service, therapist, 3, article, **month)
    return render(request, "booking/day.html", context)


def _day_problem(day, rules, now):
    engine_rules = rules.for_engine()
    tz = timezone.get_default_timezone()
    if not slots.is_valid_day(day, rules=engine_rules, now=now, tz=tz):
        last = slots.last_bookable_day(rules=engine_rules, now=now, tz=tz)
        return _("Online booking is open from today up to %(day)s. Pick a day in that time.") % {
            "day": dateformat.format(last, _("F j, Y"))
        }
    return None


def _times(service, therapists, day, now, rules, time_url, ignoring=None):
    free = availability.free_starts(
        service=service,
        therapists=therapists,
        first_day=day,
        last_day=day,
        now=now,
        rules=rules,
        ignoring=ignoring,
    )
    return [
        {"local": timezone.localtime(start), "url": time_url(timezone.localtime(start))}
        for start in slots.merge_therapists(free)
    ]


@require_safe
def choose_time(request, service, therapist, day):
    service, therapist, therapists = _selection(service, therapist)
    article = _source_article(request)
    carry = _carry(article)
    therapist_slug = therapist.slug if therapist else ANY
    rules = BookingRules.current()
    now = timezone.now()
    day_url = reverse("booking:day", args=[service.slug, therapist_slug])
    problem = _day_problem(day, rules, now)
    if problem:
        return _unavailable(
            request,
            problem,
            status=400,
            back_url=day_url + carry,
            back_label=_("Back to the calendar"),
        )

    def time_url(local):
        return (
            reverse("booking:details", args=[service.slug, therapist_slug, day, local.time()])
            + carry
        )

    context = _step_context(
        service,
        therapist,
        4,
        article,
        day=day,
        times=_times(service, therapists, day, now, rules, time_url),
        back_url=day_url + _carry(article, month=f"{day:%Y-%m}"),
    )
    return render(request, "booking/time.html", context)


def _nearby(service, therapists, start, now, rules, exclude=None, ignoring=None):
    """Free starts near `start` (the same day and the next few), closest first."""
    day = timezone.localtime(start).date()
    free = availability.free_starts(
        service=service,
        therapists=therapists,
        first_day=day,
        last_day=day + timedelta(days=NEARBY_DAYS),
        now=now,
        rules=rules,
        ignoring=ignoring,
    )
    starts = [s for s in slots.merge_therapists(free) if s != exclude]
    return slots.nearest(starts, start)


def _details_url(service, therapist, start, carry=""):
    local = timezone.localtime(start)
    return (
        reverse(
            "booking:details",
            args=[service.slug, therapist.slug if therapist else ANY, local.date(), local.time()],
        )
        + carry
    )


INTAKE_ADVICE = gettext_lazy(
    "Thank you for answering the health questions. Because you answered yes to at least "
    "one, please speak to your doctor before your visit and tell your therapist when you "
    "arrive: deep work on the calves is not safe with some of these conditions. Your "
    "therapist will check with you and adapt the treatment."
)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
def details(request, service, therapist, day, at):
    service, therapist, therapists = _selection(service, therapist)
    article = _source_article(request)
    carry = _carry(article)
    rules = BookingRules.current()
    now = timezone.now()
    tz = timezone.get_default_timezone()
    therapist_slug = therapist.slug if therapist else ANY
    times_url = reverse("booking:time", args=[service.slug, therapist_slug, day]) + carry
    problem = _day_problem(day, rules, now)
    if problem:
        return _unavailable(
            request,
            problem,
            status=400,
            back_url=reverse("booking:day", args=[service.slug, therapist_slug]) + carry,
            back_label=_("Back to the calendar"),
        )
    start = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    nearby = _nearby(service, therapists, start, now, rules)

    def choices(extra=()):
        offered = [start, *extra] if start not in extra else list(extra)
        return [(s.isoformat(), _label(s)) for s in offered]

    context = _step_context(
        service,
        therapist,
        5,
        article,
        start=start,
        times_url=times_url,
        rules=rules,
        # Inside the cut-off the patient could not move or cancel it online: say so first.
        short_notice=now > rules.online_change_closes(start),
    )
    if request.method != "POST":
        if start not in nearby:
            if mine := _just_booked(request, service, therapist, start):
                # Back from the confirmation: their own booking, not a time "not free".
                return _private(render(request, "booking/booked.html", {"appointment": mine}))
            return _unavailable(
                request,
                _("Sorry, %(time)s is not free. These times near it are:")
                % {"time": _label(start)},
                status=409,
                back_url=times_url,
                back_label=_("See the other times that day"),
                nearby=[(s, _details_url(service, therapist, s, carry)) for s in nearby],
            )
        form = DetailsForm(
            slot_choices=choices(),
            intake_fields=service.intake_fields,
            initial={
                "slot": start.isoformat(),
                "submission_key": uuid.uuid4().hex,
                "source": article.slug if article else "",
            },
        )
        return render(request, "booking/details.html", {**context, "form": form})

    form = DetailsForm(
        request.POST, slot_choices=choices(nearby), intake_fields=service.intake_fields
    )
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
        intake=form.intake_answers(),
    )
    try:
        appointment = services.book_appointment(
            service=service,
            therapist=therapist,
            start=chosen,
            patient=patient,
            submission_key=form.cleaned_data["submission_key"],
            source_article=article,
            language=translation.get_language(),
            now=now,
        )
    except Busy:
        # Nothing was booked; the same submission key makes sending it again safe.
        return render(
            request, "booking/details.html", {**context, "form": form, "busy": True}, status=503
        )
    except services.SlotUnavailable as exc:
        fresh = _nearby(service, therapists, chosen, timezone.now(), rules, exclude=chosen)
        data = request.POST.copy()
        data["slot"] = ""
        form = DetailsForm(
            data,
            slot_choices=[(s.isoformat(), _label(s)) for s in fresh],
            offer_times=True,
            intake_fields=service.intake_fields,
        )
        form.is_valid()
        form.errors.pop("slot", None)
        return render(
            request,
            "booking/details.html",
            {**context, "form": form, "taken": str(exc), "fresh": fresh},
            status=409,
        )
    if appointment.needs_clearance:
        messages.warning(request, INTAKE_ADVICE)
    # 303: every answer to this form, repeated or not, is "now GET your confirmation".
    confirmation = reverse("booking:confirmation", kwargs={"token": appointment.public_token})
    return _remember_booked(request, HttpResponseRedirect(confirmation, status=303), appointment)


def _appointment_by_token(token):
    # Tokens are URL-safe base64 (new_public_token): anything else names no appointment.
    if len(token) > 64 or not PUBLIC_TOKEN.fullmatch(token):
        raise Http404
    return get_object_or_404(
        Appointment.objects.select_related("service", "therapist"), public_token=token
    )


@require_safe
def confirmation(request, token):
    appointment = _appointment_by_token(token)
    rules = BookingRules.current()
    return _private(
        render(
            request,
            "booking/confirmation.html",
            {
                "appointment": appointment,
                "rules": rules,
                "can_change": services.can_change_online(appointment, rules=rules),
                "manage_url": reverse("booking:manage", args=[links.manage_token(appointment)]),
                "zone_name": _zone_name(appointment.starts_at),
            },
        )
    )


@require_safe
def calendar_file(request, token):
    appointment = _appointment_by_token(token)
    response = HttpResponse(
        appointment_ics(
            appointment,
            sequence=appointment.sequence,
            cancelled=not appointment.is_active,
            invitation=False,  # a download to import, not an invitation to answer
        ),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="appointment.ics"'
    return _private(response)


# --- managing a booking from the signed link ------------------------------------------------
def _managed(token):
    """The appointment a manage token names; a wrong, tampered or stale one is a plain 404."""
    appointment = links.appointment_for_token(token)
    if appointment is None:
        raise Http404
    return appointment


def _too_late(request, token):
    return _private(
        _unavailable(
            request,
            _("It is too late to change this appointment online. Please call us."),
            status=409,
            back_url=reverse("booking:manage", args=[token]),
            back_label=_("Back to your appointment"),
        )
    )


def _manage_context(appointment, token, **extra):
    rules = BookingRules.current()
    return {
        "appointment": appointment,
        "token": token,
        "rules": rules,
        "can_change": services.can_change_online(appointment, rules=rules),
        "cutoff": appointment.starts_at - rules.cancel_cutoff,
        "zone_name": _zone_name(appointment.starts_at),
        **extra,
    }


@never_cache
@require_safe
def manage(request, token):
    appointment = _managed(token)
    context = _manage_context(appointment, token)
    return _private(render(request, "booking/manage.html", context))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request, token):
    """A second step before cancelling: GET asks "Cancel it?" (no JavaScript), POST cancels."""
    appointment = _managed(token)
    if request.method != "POST":
        if not appointment.is_active:
            return redirect("booking:manage", token=token)
        if not services.can_change_online(appointment):
            return _too_late(request, token)
        context = _manage_context(appointment, token, cancel_form=CancelForm())
        return _private(render(request, "booking/cancel_confirm.html", context))
    form = CancelForm(request.POST)
    if not form.is_valid():
        context = _manage_context(appointment, token, cancel_form=form)
        return _private(render(request, "booking/cancel_confirm.html", context, status=400))
    try:
        cancelled = services.cancel_appointment(
            appointment=appointment, reason=form.cleaned_data["reason"]
        )
    except services.TooLateToChange:
        return _too_late(request, token)
    if cancelled:
        messages.success(request, _("Your appointment is cancelled. We have emailed you."))
    else:
        messages.info(request, _("This appointment was already cancelled."))
    return redirect("booking:manage", token=token)


@never_cache
@require_safe
def reschedule_day(request, token):
    appointment = _managed(token)
    if not services.can_change_online(appointment):
        return _too_late(request, token)

    def day_url(day):
        return reverse("booking:reschedule_time", args=[token, day])

    month, problem = _month(
        request,
        service=appointment.service,
        therapists=[appointment.therapist],
        day_url=day_url,
        first_url=lambda start: reverse(
            "booking:reschedule_confirm",
            args=[token, timezone.localtime(start).date(), timezone.localtime(start).time()],
        ),
        carry_params={},
        ignoring=appointment,
    )
    if problem:
        return _private(problem)
    context = _manage_context(appointment, token, **month)
    return _private(render(request, "booking/reschedule_day.html", context))


@never_cache
@require_safe
def reschedule_time(request, token, day):
    appointment = _managed(token)
    if not services.can_change_online(appointment):
        return _too_late(request, token)
    rules = BookingRules.current()
    now = timezone.now()
    problem = _day_problem(day, rules, now)
    if problem:
        return _private(
            _unavailable(
                request,
                problem,
                status=400,
                back_url=reverse("booking:reschedule", args=[token]),
                back_label=_("Back to the calendar"),
            )
        )

    def time_url(local):
        return reverse("booking:reschedule_confirm", args=[token, day, local.time()])

    times = _times(
        appointment.service, [appointment.therapist], day, now, rules, time_url, appointment
    )
    context = _manage_context(
        appointment,
        token,
        day=day,
        times=times,
        back_url=reverse("booking:reschedule", args=[token]) + f"?month={day:%Y-%m}",
    )
    return _private(render(request, "booking/reschedule_time.html", context))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
def reschedule_confirm(request, token, day, at):
    appointment = _managed(token)
    # A day outside the booking window is refused first: year 1 or 9999 has no UTC instant.
    problem = _day_problem(day, BookingRules.current(), timezone.now())
    if problem:
        return _private(
            _unavailable(
                request,
                problem,
                status=400,
                back_url=reverse("booking:reschedule", args=[token]),
                back_label=_("Back to the calendar"),
            )
        )
    start = datetime.combine(day, at, tzinfo=timezone.get_default_timezone()).astimezone(UTC)
    if request.method == "POST":
        try:
            services.reschedule_appointment(appointment=appointment, start=start)
        except services.TooLateToChange:
            return _too_late(request, token)
        except services.SlotUnavailable as exc:
            return _private(
                _unavailable(
                    request,
                    str(exc),
                    status=409,
                    back_url=reverse("booking:reschedule_time", args=[token, day]),
                    back_label=_("See the other times that day"),
                )
            )
        messages.success(request, _("Your appointment has moved. We have emailed you."))
        return redirect("booking:manage", token=token)
    if not services.can_change_online(appointment):
        return _too_late(request, token)
    rules = BookingRules.current()
    now = timezone.now()
    free = _times(appointment.service, [appointment.therapist], day, now, rules, str, appointment)
    if _day_problem(day, rules, now) or start not in {slot["local"] for slot in free}:
        return _private(
            _unavailable(
                request,
                _("Sorry, %(time)s is not free.") % {"time": _label(start)},
                status=409,
                back_url=reverse("booking:reschedule", args=[token]),
                back_label=_("Choose another time"),
            )
        )
    context = _manage_context(
        appointment,
        token,
        new_start=start,
        new_zone_name=_zone_name(start),
    )
    return _private(render(request, "booking/reschedule_confirm.html", context))
