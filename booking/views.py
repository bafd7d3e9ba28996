"""The booking steps: service → therapist → day → time → details → confirmation, and the
patient's manage pages (cancel, or move to another free time) reached from a signed link.

Each step is a plain, bookmarkable GET page (no JavaScript, no session): what was chosen
so far lives in the URL, and so does the article a patient came from (`?from=<slug>`).
Only POSTs write, through booking.services.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import combinations
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.validators import slug_re
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django_ratelimit.decorators import ratelimit

from articles.models import Article
from clinic.http import make_private, private_page
from clinic.locking import Busy
from clinic.pagecache import CSRF_HOLE, KEY_HOLE, depends_on_schedule, fills_holes, with_holes

from . import links, services
from .availability import Availability, OutsideBookingWindow
from .calendar import appointment_ics, therapist_feed_ics
from .forms import CancelForm, DetailsForm, LeaveWaitlistForm, WaitlistForm
from .models import Appointment, BookingRules, ConsentText, Service, Therapist

ANY = "any"
PUBLIC_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
# The browser that booked remembers what it booked (the confirmation links' tokens, signed),
# so Back to the details step says "You have booked this time" to it and to nobody else.
BOOKED_COOKIE = "booked"
BOOKED_SALT = "booking.views.booked"
BOOKED_KEEP = 5
BOOKED_SECONDS = 24 * 60 * 60
# A lock wait that timed out is someone else's booking of the same therapist: seconds, not
# minutes, before trying again is worth it (clinic.views.busy says the same).
BUSY_RETRY_AFTER = "5"


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
    if isinstance(therapist, Therapist):
        found = found.filter(therapist=therapist)
    elif therapist is not None:  # a treatment for two: the first visit names the first chosen
        found = found.filter(therapist=therapist.first)
    return found.select_related("therapist").first()


# --- where the patient came from ------------------------------------------------------------
def _source_article(request):
    """The published article named by ?from= (or the form's `source`); None if not one."""
    slug = request.POST.get("source") or request.GET.get("from") or ""
    # Only a slug's characters reach the query: PostgreSQL refuses a NUL in a string.
    if len(slug) > 200 or not slug_re.match(slug):
        return None
    return Article.objects.published().filter(slug=slug).only("pk", "slug", "title").first()


def _source_query(article, **params):
    """A query string that carries the source article (and `params`) to the next step."""
    if article is not None:
        params["from"] = article.slug
    return f"?{urlencode(params)}" if params else ""


# --- the steps ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TwoTherapists:
    """Who a patient chose for a treatment for two: one therapist (the other any) or both.
    On the URL as "<slug>" or "<slug>--<slug>" (slugify never writes two hyphens)."""

    first: Therapist
    second: Therapist | None = None

    @property
    def slug(self):
        return "--".join(t.slug for t in (self.first, self.second) if t is not None)

    @property
    def name(self):
        names = [t.name for t in (self.first, self.second) if t is not None]
        if len(names) == 1:
            return _("%(name)s and any other therapist") % {"name": names[0]}
        return get_text_list(names, _("and"))

    @property
    def members(self):
        return [t for t in (self.first, self.second) if t is not None]


def _selection(service_slug, therapist_slug):
    """(service, chosen therapist or None, the therapists to ask); 404 if unknown. For a
    treatment for two the choice is a TwoTherapists and every therapist offering it is
    asked (the chosen must be among the two free)."""
    service = get_object_or_404(Service.objects.active(), slug=service_slug)
    offering = list(Therapist.objects.offering(service))
    if therapist_slug == ANY:
        return service, None, offering
    slugs = therapist_slug.split("--") if service.for_two else [therapist_slug]
    chosen = [next((t for t in offering if t.slug == slug), None) for slug in slugs]
    if len(chosen) > 2 or None in chosen or len(set(chosen)) < len(chosen):
        raise Http404("No such therapist for this service")
    if service.for_two:
        return service, TwoTherapists(*chosen), offering
    return service, chosen[0], chosen


def _required(therapist):
    """The therapists a treatment for two must include (those chosen by name)."""
    return therapist.members if isinstance(therapist, TwoTherapists) else ()


def _form_kwargs(service):
    return {"intake_fields": service.intake_fields, "for_two": service.for_two}


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
        "carry": _source_query(article),
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
            "carry": _source_query(article),
        },
    )


@require_safe
def choose_therapist(request, service):
    service, _chosen, offering = _selection(service, ANY)
    article = _source_article(request)
    pairs = []
    if service.for_two:  # "any two", one named and any other, or both named
        pairs = [TwoTherapists(first, second) for first, second in combinations(offering, 2)]
    return render(
        request,
        "booking/therapist.html",
        _step_context(service, None, 2, article, therapists=offering, pairs=pairs),
    )


class _MonthRefused(Exception):
    """?month= names no month that can be shown; the message says why."""


def _month_asked(request):
    """The first day of the month ?month= names, or None when it names none."""
    raw = request.GET.get("month", "")
    try:
        return datetime.strptime(raw, "%Y-%m").date().replace(day=1) if len(raw) == 7 else None
    except ValueError:
        return None


def _month_context(request, availability, *, day_url, first_url, carry_params):
    """The month view's context (free days link to day_url(day), the soonest free time to
    first_url(start)); _MonthRefused for a month that cannot be read or lies outside the
    booking window."""
    if not request.GET.get("month"):
        month = availability.opening_month()
    elif (first := _month_asked(request)) is None:
        raise _MonthRefused(_("We could not read that month. Pick a day from the calendar."))
    else:
        try:
            month = availability.month(first)
        except OutsideBookingWindow:
            raise _MonthRefused(
                _("Online booking is open up to %(day)s. Pick a day in that time.")
                % {"day": dateformat.format(availability.last_day, _("F j, Y"))}
            ) from None

    def month_link(first):
        return "?" + urlencode({"month": f"{first:%Y-%m}", **carry_params}) if first else ""

    weekdays = month.weeks[0]
    return {
        "month": month.month,
        "weeks": [
            [
                {
                    "day": day,
                    "in_month": day.month == month.month.month,
                    "free": len(month.free_days.get(day, ())),
                    "url": day_url(day) if month.free_days.get(day) else "",
                    "state": month.states[day],
                }
                for day in week
            ]
            for week in month.weeks
        ],
        "weekday_names": [dateformat.format(day, "D") for day in weekdays],
        "weekday_full": [dateformat.format(day, "l") for day in weekdays],
        "previous_month_url": month_link(month.previous_month),
        "next_month_url": month_link(month.next_month),
        "first_free": month.first_free,
        "first_free_url": first_url(month.first_free) if month.first_free else "",
        "last_day": availability.last_day,
    }


def _month_refused(request, exc, carry_params):
    return _unavailable(
        request,
        str(exc),
        status=400,
        back_url=request.path + (f"?{urlencode(carry_params)}" if carry_params else ""),
        back_label=_("Show this month"),
    )


def _outside_window(request, availability, *, back_url):
    """The one answer to a day that cannot be booked online: 400, back to the calendar."""
    return _unavailable(
        request,
        _("Online booking is open from today up to %(day)s. Pick a day in that time.")
        % {"day": dateformat.format(availability.last_day, _("F j, Y"))},
        status=400,
        back_url=back_url,
        back_label=_("Back to the calendar"),
    )


@require_safe
def choose_day(request, service, therapist):
    service, therapist, therapists = _selection(service, therapist)
    article = _source_article(request)
    therapist_slug = therapist.slug if therapist else ANY
    carry = _source_query(article)
    carry_params = {"from": article.slug} if article else {}

    def day_url(day):
        return reverse("booking:time", args=[service.slug, therapist_slug, day]) + carry

    availability = Availability(
        service=service, therapists=therapists, required=_required(therapist)
    )
    try:
        month = _month_context(
            request,
            availability,
            day_url=day_url,
            # The soonest free time leads straight to its details step, as it says.
            first_url=lambda start: _details_url(service, therapist, start, carry),
            carry_params=carry_params,
        )
    except _MonthRefused as exc:
        return _month_refused(request, exc, carry_params)
    context = _step_context(service, therapist, 3, article, **month)
    return _showing_schedule(
        render(request, "booking/day.html", context), availability, month["first_free"]
    )


def _showing_schedule(response, availability, first_free, *, also_until=None):
    """`response` marked for the page cache: it shows the schedule `availability` read, and
    stays true until its first free time is too close to book, a waitlist hold runs out or
    `also_until` (clinic.pagecache)."""
    ends = [availability.valid_until(), also_until]
    if first_free is not None:
        ends.append(first_free - availability.rules.min_notice)
    ends = [end for end in ends if end is not None]
    until = min(ends) if ends else None
    return depends_on_schedule(response, version=availability.version, until=until)


@require_safe
def choose_time(request, service, therapist, day):
    service, therapist, therapists = _selection(service, therapist)
    article = _source_article(request)
    carry = _source_query(article)
    therapist_slug = therapist.slug if therapist else ANY
    day_url = reverse("booking:day", args=[service.slug, therapist_slug])
    availability = Availability(
        service=service, therapists=therapists, required=_required(therapist)
    )
    try:
        starts = availability.times_on(day)
    except OutsideBookingWindow:
        return _outside_window(request, availability, back_url=day_url + carry)

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
        times=_time_links(starts, time_url),
        back_url=day_url + _source_query(article, month=f"{day:%Y-%m}"),
    )
    response = render(request, "booking/time.html", context)
    return _showing_schedule(response, availability, starts[0] if starts else None)


def _time_links(starts, time_url):
    return [
        {"local": timezone.localtime(start), "url": time_url(timezone.localtime(start))}
        for start in starts
    ]


def _details_url(service, therapist, start, carry=""):
    local = timezone.localtime(start)
    return (
        reverse(
            "booking:details",
            args=[service.slug, therapist.slug if therapist else ANY, local.date(), local.time()],
        )
        + carry
    )


def _slot_choices(starts):
    return [(start.isoformat(), _label(start)) for start in starts]


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
    carry = _source_query(article)
    therapist_slug = therapist.slug if therapist else ANY
    times_url = reverse("booking:time", args=[service.slug, therapist_slug, day]) + carry
    offer = request.POST.get("offer") if request.method == "POST" else request.GET.get("offer")
    hold = links.hold_for_token(offer) if offer else None
    availability = Availability(
        service=service, therapists=therapists, holding=hold, required=_required(therapist)
    )
    try:
        start = availability.start_on(day, at)
    except OutsideBookingWindow:
        back_url = reverse("booking:day", args=[service.slug, therapist_slug]) + carry
        return _outside_window(request, availability, back_url=back_url)
    if offer and not _offer_stands(hold, service, therapist, start, availability.now):
        claimed = hold and hold.appointment
        if claimed and claimed.submission_key == request.POST.get("submission_key"):
            # The same submit again (a double click): the booking it made, not "ended".
            token = claimed.public_token
            url = reverse("booking:confirmation", kwargs={"token": token})
            return HttpResponseRedirect(url, status=303)
        if hold is None:
            return _unavailable(
                request,
                _("This offer link is not valid."),
                status=404,
                back_label=_("See other free times"),
            )
        return _offer_ended(request, hold, status=409)
    rules = availability.rules
    context = _step_context(
        service,
        therapist,
        5,
        article,
        start=start,
        times_url=times_url,
        rules=rules,
        # Inside the cut-off the patient could not move or cancel it online: say so first.
        short_notice=availability.now > rules.online_change_closes(start),
        hold=hold,
        offer=offer if hold else "",
    )
    if request.method != "POST":
        return _details_form(request, availability, start, context)
    return _book(request, availability, start, context)


def _details_form(request, availability, start, context):
    """The details form for `start`, or 409 with free times near it when it is not free."""
    # Back from the confirmation: their own booking, whether or not (with "no preference")
    # another therapist is still free then; never a blank form to book it twice.
    mine = _just_booked(request, context["service"], context["therapist"], start)
    if mine:
        return make_private(render(request, "booking/booked.html", {"appointment": mine}))
    if not availability.is_free(start):
        carry = context["carry"]
        nearby = availability.nearby(start)
        return _unavailable(
            request,
            _("Sorry, %(time)s is not free. These times near it are:") % {"time": _label(start)},
            status=409,
            back_url=context["times_url"],
            back_label=_("See the other times that day"),
            nearby=[
                (s, _details_url(context["service"], context["therapist"], s, carry))
                for s in nearby
            ],
        )
    if fills_holes(request) and context["hold"] is None and not context["offer"]:
        # The same blank form for everybody: rendered with holes for the visitor's secrets,
        # stored by the page cache while the time stays free, and filled in per visitor.
        form = _new_details_form(start, context, KEY_HOLE)
        page = {**context, "form": form, "csrf_token": CSRF_HOLE}
        response = render(request, "booking/details.html", page)
        # The "book it now, change it by phone" warning appears once the online cut-off passes.
        changes_close = availability.rules.online_change_closes(start)
        also = changes_close if changes_close > availability.now else None
        return with_holes(_showing_schedule(response, availability, start, also_until=also))
    form = _new_details_form(start, context, uuid.uuid4().hex)
    return render(request, "booking/details.html", {**context, "form": form})


def _new_details_form(start, context, submission_key):
    """The unbound details form for `start`, as every visitor first sees it."""
    return DetailsForm(
        slot_choices=_slot_choices([start]),
        **_form_kwargs(context["service"]),
        initial={
            "slot": start.isoformat(),
            "submission_key": submission_key,
            "source": context["source_article"].slug if context["source_article"] else "",
            **_offered_to(context["hold"], context["offer"]),
        },
    )


def _book(request, availability, start, context):
    """Book the POSTed details: 400 with every field kept for a mistake, 409 with fresh times
    nearby for a time just taken, 503 when the therapist's row stayed locked too long."""
    # The time on the URL, or (after a lost race) one of the fresh times offered near it.
    offered = _slot_choices([start, *availability.nearby(start)])
    form = DetailsForm(request.POST, slot_choices=offered, **_form_kwargs(context["service"]))
    if not form.is_valid():
        if "submission_key" in form.errors:
            # A damaged key: hand out a fresh one, so the next submit can go through.
            data = request.POST.copy()
            data["submission_key"] = uuid.uuid4().hex
            form.data = data
        return render(request, "booking/details.html", {**context, "form": form}, status=400)
    chosen = datetime.fromisoformat(form.cleaned_data["slot"])
    try:
        appointment = services.book_appointment(
            service=context["service"],
            therapist=_first(context["therapist"]),
            second_therapist=getattr(context["therapist"], "second", None),
            companion=form.companion_details(),
            start=chosen,
            patient=form.patient_details(),
            submission_key=form.cleaned_data["submission_key"],
            source_article=context["source_article"],
            language=translation.get_language(),
            hold=context["hold"],
            now=availability.now,
        )
    except Busy:
        # Nothing was booked; the same submission key makes sending it again safe.
        busy = render(
            request, "booking/details.html", {**context, "form": form, "busy": True}, status=503
        )
        busy["Retry-After"] = BUSY_RETRY_AFTER
        return busy
    except services.OfferLost:
        return _offer_ended(request, context["hold"], status=409)
    except services.SlotUnavailable as exc:
        fresh = availability.nearby(chosen)
        # What they typed, shown again without errors; the time is theirs to pick anew.
        retry = DetailsForm(
            initial={**request.POST.dict(), "slot": ""},
            slot_choices=_slot_choices(fresh),
            offer_times=True,
            **_form_kwargs(context["service"]),
        )
        return render(
            request,
            "booking/details.html",
            {**context, "form": retry, "taken": str(exc), "fresh": fresh},
            status=409,
        )
    if appointment.needs_clearance:
        messages.warning(request, INTAKE_ADVICE)
    # 303: every answer to this form, repeated or not, is "now GET your confirmation".
    confirmation = reverse("booking:confirmation", kwargs={"token": appointment.public_token})
    return _remember_booked(request, HttpResponseRedirect(confirmation, status=303), appointment)


def _first(therapist):
    return therapist.first if isinstance(therapist, TwoTherapists) else therapist


def _appointment_by_token(token):
    # Tokens are URL-safe base64 (new_public_token): anything else names no appointment.
    if len(token) > 64 or not PUBLIC_TOKEN.fullmatch(token):
        raise Http404
    return get_object_or_404(
        Appointment.objects.select_related("service", "therapist"), public_token=token
    )


@require_safe
@private_page
def confirmation(request, token):
    appointment = _appointment_by_token(token)
    rules = BookingRules.current()
    return render(
        request,
        "booking/confirmation.html",
        {
            "appointment": appointment,
            "rules": rules,
            "can_change": services.can_change_online(appointment, rules=rules),
            "manage_url": reverse("booking:manage", args=[links.manage_token(appointment)]),
            "zone_name": _zone_name(appointment.starts_at),
            "health_history_url": _health_history_path(appointment),
        },
    )


def _health_history_path(appointment):
    """The confirmation page's link to the health form: it proves no address, so it opens
    only the booking's own record (booking.health)."""
    from .health import health_history_path

    return health_history_path(appointment, emailed=False) if appointment.is_active else ""


@require_safe
@private_page
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
    return response


@require_safe
@private_page
def therapist_calendar_feed(request, token):
    """A therapist's own visits as a calendar feed their phone subscribes to by this secret
    URL; a reset token, or anything else, is a 404. Never stored by any cache."""
    therapist = Therapist.objects.with_calendar_token(token).first()
    if therapist is None:
        raise Http404("No such calendar feed")
    now = timezone.now()
    visits = Appointment.objects.in_calendar_feed(therapist, now=now).select_related("service")
    response = HttpResponse(
        therapist_feed_ics(therapist, visits, now=now), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = 'inline; filename="visits.ics"'
    return response


# --- managing a booking from the signed link ------------------------------------------------
# Every page here is about one patient's visit: private_page keeps it out of every cache.
def _appointment_for_link(token):
    """The appointment a manage token names; a wrong, tampered or stale one is a plain 404."""
    appointment = links.appointment_for_token(token)
    if appointment is None:
        raise Http404
    return appointment


def _too_late(request, token):
    return _unavailable(
        request,
        _("It is too late to change this appointment online. Please call us."),
        status=409,
        back_url=reverse("booking:manage", args=[token]),
        back_label=_("Back to your appointment"),
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


def _cannot_move(request, appointment, token):
    """The answer for a visit that cannot be moved online now (cancelled: its own page; past
    the cut-off: "too late"), or None when it can."""
    if not appointment.is_active:
        return redirect("booking:manage", token=token)
    if not services.can_change_online(appointment):
        return _too_late(request, token)
    return None


def _moving(appointment):
    """The free times `appointment` may move to: its therapist and treatment, its own time
    counted as free."""
    therapists = [visit.therapist for visit in appointment.visits_together]
    return Availability(
        service=appointment.service,
        therapists=therapists,
        ignoring=appointment,
        required=therapists,
    )


@never_cache
@require_safe
@private_page
def manage(request, token):
    appointment = _appointment_for_link(token)
    context = _manage_context(appointment, token)
    return render(request, "booking/manage.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@private_page
def cancel(request, token):
    """A second step before cancelling: GET asks "Cancel it?" (no JavaScript), POST cancels."""
    appointment = _appointment_for_link(token)
    if request.method != "POST":
        if not appointment.is_active:
            return redirect("booking:manage", token=token)
        if not services.can_change_online(appointment):
            return _too_late(request, token)
        context = _manage_context(appointment, token, cancel_form=CancelForm())
        return render(request, "booking/cancel_confirm.html", context)
    form = CancelForm(request.POST)
    if not form.is_valid():
        context = _manage_context(appointment, token, cancel_form=form)
        return render(request, "booking/cancel_confirm.html", context, status=400)
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
@private_page
def reschedule_day(request, token):
    appointment = _appointment_for_link(token)
    if refused := _cannot_move(request, appointment, token):
        return refused

    def day_url(day):
        return reverse("booking:reschedule_time", args=[token, day])

    try:
        month = _month_context(
            request,
            _moving(appointment),
            day_url=day_url,
            first_url=lambda start: reverse(
                "booking:reschedule_confirm",
                args=[token, timezone.localtime(start).date(), timezone.localtime(start).time()],
            ),
            carry_params={},
        )
    except _MonthRefused as exc:
        return _month_refused(request, exc, {})
    context = _manage_context(appointment, token, **month)
    return render(request, "booking/reschedule_day.html", context)


@never_cache
@require_safe
@private_page
def reschedule_time(request, token, day):
    appointment = _appointment_for_link(token)
    if refused := _cannot_move(request, appointment, token):
        return refused
    availability = _moving(appointment)
    calendar_url = reverse("booking:reschedule", args=[token])
    try:
        starts = availability.times_on(day)
    except OutsideBookingWindow:
        return _outside_window(request, availability, back_url=calendar_url)

    def time_url(local):
        return reverse("booking:reschedule_confirm", args=[token, day, local.time()])

    context = _manage_context(
        appointment,
        token,
        day=day,
        times=_time_links(starts, time_url),
        back_url=calendar_url + f"?month={day:%Y-%m}",
    )
    return render(request, "booking/reschedule_time.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
@private_page
def reschedule_confirm(request, token, day, at):
    appointment = _appointment_for_link(token)
    if refused := _cannot_move(request, appointment, token):
        return refused
    availability = _moving(appointment)
    calendar_url = reverse("booking:reschedule", args=[token])
    try:
        start = availability.start_on(day, at)
    except OutsideBookingWindow:
        return _outside_window(request, availability, back_url=calendar_url)
    if start == appointment.starts_at:
        if request.method == "POST":  # a double-clicked move, already done: its own page
            return redirect("booking:manage", token=token)
        # Not a move (Back after moving, or a typed address): say so.
        return _unavailable(
            request,
            _("That is already the time of your appointment."),
            status=409,
            back_url=calendar_url,
            back_label=_("Choose another time"),
        )
    if request.method == "POST":
        try:
            services.reschedule_appointment(appointment=appointment, start=start)
        except services.TooLateToChange:
            return _too_late(request, token)
        except services.SlotUnavailable as exc:
            return _unavailable(
                request,
                str(exc),
                status=409,
                back_url=reverse("booking:reschedule_time", args=[token, day]),
                back_label=_("See the other times that day"),
            )
        messages.success(request, _("Your appointment has moved. We have emailed you."))
        return redirect("booking:manage", token=token)
    if not availability.is_free(start):
        return _unavailable(
            request,
            _("Sorry, %(time)s is not free.") % {"time": _label(start)},
            status=409,
            back_url=calendar_url,
            back_label=_("Choose another time"),
        )
    context = _manage_context(
        appointment,
        token,
        new_start=start,
        new_zone_name=_zone_name(start),
        # Inside the cut-off the moved visit could not be changed online again: say so first.
        short_notice=availability.now > availability.rules.online_change_closes(start),
    )
    return render(request, "booking/reschedule_confirm.html", context)


# --- the waitlist: "Nothing suits? Join the waitlist" -----------------------------------
def _waitlist_start(request, availability):
    """What the form starts with, from the day or month the patient came from: (initial
    values, the days offered as checkboxes). A full day is ticked on its own; a month is
    the range of its days ahead; else the booking window's first two weeks. Anything
    unreadable is simply not used."""
    today = timezone.localdate()
    first, last = today, min(today + timedelta(days=13), availability.last_day)
    raw_day = request.GET.get("day", "")
    month = _month_asked(request)
    try:
        asked = date.fromisoformat(raw_day) if len(raw_day) == 10 else None
    except ValueError:
        asked = None
    initial = {"when": WaitlistForm.RANGE, "parts": ["morning", "afternoon", "evening"]}
    if asked and today <= asked <= availability.last_day:
        first = last = asked
        initial.update(when=WaitlistForm.DAYS, days=[asked.isoformat()])
        listed_last = min(asked + timedelta(days=13), availability.last_day)
    elif month and today.replace(day=1) <= month <= availability.last_day:
        first = max(month, today)
        next_month = (month + timedelta(days=31)).replace(day=1)
        last = listed_last = min(next_month - timedelta(days=1), availability.last_day)
    else:
        listed_last = last
    listed = [first + timedelta(days=n) for n in range((listed_last - first).days + 1)]
    return {**initial, "first_day": first, "last_day": last}, listed


@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
@require_http_methods(["GET", "HEAD", "POST"])
def join_waitlist(request, service, therapist):
    """Ask to be told when a time suits: GET the form (prefilled), POST joins."""
    service, therapist, therapists = _selection(service, therapist)
    if service.for_two:
        # A freed time is one therapist's: it can never seat two, so nothing would be offered.
        raise Http404("The waitlist is for treatments for one")
    article = _source_article(request)
    therapist_slug = therapist.slug if therapist else ANY
    availability = Availability(service=service, therapists=therapists)
    initial, listed = _waitlist_start(request, availability)
    bounds = {
        "first_allowed": timezone.localdate(),
        "last_allowed": availability.last_day,
        "listed_days": listed,
    }
    if request.method == "POST":
        form = WaitlistForm(request.POST, **bounds)
    else:
        form = WaitlistForm(initial=initial, **bounds)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.join_waitlist(
            service=service,
            therapist=therapist,
            first_day=data["first_day"],
            last_day=data["last_day"],
            days=data["days"],
            parts=data["parts"],
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            language=translation.get_language(),
        )
        return redirect("booking:waitlist_joined")
    context = _step_context(
        service,
        therapist,
        3,
        article,
        form=form,
        back_url=reverse("booking:day", args=[service.slug, therapist_slug])
        + _source_query(article),
    )
    status = 400 if form.is_bound else 200
    return render(request, "booking/waitlist_join.html", context, status=status)


@require_safe
def waitlist_joined(request):
    """The same answer for everyone who joins: it never says whether the address was listed."""
    return render(request, "booking/waitlist_joined.html")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@private_page
def leave_waitlist(request, token):
    """The confirmation email's link: GET asks "Leave the waitlist?", POST leaves."""
    entry = links.waitlist_entry_for_token(token)
    if entry is None:
        raise Http404("No such waitlist entry")
    if request.method == "POST" and LeaveWaitlistForm(request.POST).is_valid():
        services.leave_waitlist(entry=entry)
        entry.refresh_from_db()
    return render(
        request,
        "booking/waitlist_leave.html",
        {"entry": entry, "left": entry.state != entry.State.WAITING},
    )


def _offer_stands(hold, service, therapist, start, now):
    """Whether `hold` (from an offer link) is still this patient's to book at `start`."""
    return (
        hold is not None
        and hold.state == hold.State.ACTIVE
        and hold.expires_at > now
        and hold.starts_at == start
        and hold.service_id == service.pk
        and therapist is not None
        and hold.therapist_id == therapist.pk
    )


def _offered_to(hold, offer):
    """The details form's fields the waitlist entry already knows."""
    if hold is None:
        return {}
    entry = hold.entry
    return {"name": entry.name, "email": entry.email, "phone": entry.phone, "offer": offer}


def _offer_ended(request, hold, *, status):
    """Why an offer can no longer be booked, said plainly: someone else booked it, it ran
    out, or it was withdrawn; and whether the patient is still on the waitlist."""
    hold.refresh_from_db()
    entry = hold.entry
    entry.refresh_from_db()
    if hold.state == hold.State.LOST:
        why = _("Sorry, this offer has ended: someone was quicker.")
    elif hold.state == hold.State.EXPIRED or hold.expires_at <= timezone.now():
        why = _("Sorry, this offer ended at %(time)s: the time was kept for you until then.") % {
            "time": dateformat.format(timezone.localtime(hold.expires_at), _("g:i A"))
        }
    else:
        why = _("Sorry, this offer has ended.")
    if entry.state == entry.State.WAITING:
        still = _("You are still on the waitlist.")
        why = f"{why} {still}"
    return _unavailable(request, why, status=status, back_label=_("See other free times"))


@never_cache
@require_safe
@private_page
def waitlist_offer(request, token):
    """The offer email's link: on to the details step with everything known filled in, or
    why the offer has ended (someone was quicker, it ran out, it was withdrawn)."""
    hold = links.hold_for_token(token)
    if hold is None:
        raise Http404("No such offer")
    if not _offer_stands(hold, hold.service, hold.therapist, hold.starts_at, timezone.now()):
        return _offer_ended(request, hold, status=410)
    url = _details_url(hold.service, hold.therapist, hold.starts_at)
    return redirect(url + "?" + urlencode({"offer": token}))


# --- the health history and consent, from the signed link ---------------------------------
def _proof_needed(request):
    """The confirmation page's link, for a record whose address is proven: the emailed one only."""
    return _unavailable(
        request,
        _("For your privacy, open your health history from the link in the email we sent you."),
        status=403,
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@ratelimit(key="ip", rate=booking_rate, method="POST", block=True)
@private_page
def health_history(request, token):
    """The health history and consent form: GET shows it (prefilled from the last version
    signed), POST signs a new version. The answers travel by POST only; the page is private."""
    from . import health
    from .forms import HealthHistoryForm

    try:
        appointment, emailed = health.appointment_for_health_token(token)
    except health.BadHealthLink:
        return _unavailable(
            request,
            _(
                "This link to your health history is not valid or has expired. Use the link "
                "in your latest email from us, or call us."
            ),
            status=404,
        )
    try:
        patient = health.record_for(appointment, emailed=emailed)
    except health.ProofNeeded:
        return _proof_needed(request)
    latest = health.latest_history(patient)
    consent = ConsentText.current()
    status = 200
    if request.method == "POST":
        form = HealthHistoryForm(request.POST)
        if form.is_valid():
            try:
                health.sign_health_history(
                    patient=patient,
                    answers=form.answers(),
                    signed_name=form.cleaned_data["signed_name"],
                    consent_version=form.cleaned_data["consent_version"],
                    language=translation.get_language(),
                    appointment=appointment,
                    emailed=emailed,
                )
            except health.ProofNeeded:  # the address was proven while the form was open
                return _proof_needed(request)
            except health.ConsentChanged:
                form.add_error(
                    None,
                    _("The consent text has changed. Please read it again below and sign."),
                )
            else:
                return HttpResponseRedirect(request.path + "?signed=1", status=303)
        status = 400
        # The consent shown again is the newest: the one the patient will now sign.
        data = request.POST.copy()
        data["consent_version"] = consent.version if consent else ""
        form.data = data
    else:
        form = HealthHistoryForm(
            initial={
                **HealthHistoryForm.initial_from(latest),
                "consent_version": consent.version if consent else "",
            }
        )
    context = {
        "appointment": appointment,
        "form": form,
        "consent": consent,
        "latest": latest,
        "state": health.history_state(latest.signed_at if latest else None, appointment.starts_at),
        "just_signed": request.method != "POST" and request.GET.get("signed") == "1" and latest,
        "advice": INTAKE_ADVICE if latest and latest.needs_clearance else "",
    }
    return render(request, "booking/health_history.html", context, status=status)
