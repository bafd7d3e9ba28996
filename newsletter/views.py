"""Newsletter pages: sign up (from any page's footer), confirm, unsubscribe.

The sign-up POST carries no CSRF token on purpose: the footer form is on every page, and
pages are cached whole, so nothing in them may be per visitor. A forged sign-up harms no
one (nothing happens until the emailed link is confirmed); a honeypot and a per-address
rate limit stop bots. Confirming and unsubscribing take a button press (a POST), so mail
scanners that fetch links cannot do either.
"""

import time

from django.conf import settings
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_ratelimit.decorators import ratelimit

from clinic.http import make_private

from . import services
from .forms import SignupForm


def newsletter_rate(group, request):
    return settings.NEWSLETTER_RATE_LIMIT


@require_safe
def signup(request):
    return render(request, "newsletter/signup.html")


@csrf_exempt
@require_POST
@ratelimit(key="ip", rate=newsletter_rate, method="POST", block=True)
def subscribe(request):
    started = time.monotonic()
    form = SignupForm(request.POST)
    if not form.is_valid():
        errors = form.errors.get("email") or form.errors.get("website") or []
        context = {"value": request.POST.get("email", "")[:254], "errors": errors}
        return render(request, "newsletter/signup.html", context, status=400)
    if not form.is_bot:
        services.subscribe(
            email=form.cleaned_data["email"],
            page=form.cleaned_data["page"],
            ip=request.META.get("REMOTE_ADDR"),
            language=translation.get_language(),
        )
    # Every sign-up answers alike and takes as long: new, pending, confirmed or a bot.
    remaining = settings.NEWSLETTER_SIGNUP_SECONDS - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    return redirect("newsletter:check_inbox")


@require_safe
def check_inbox(request):
    return render(request, "newsletter/check_inbox.html")


def _bad_link(request):
    return render(request, "newsletter/bad_link.html", status=404)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request, token):
    try:
        subscriber = services.subscriber_for_confirm_link(token)
    except services.BadLink:
        return _bad_link(request)
    except services.ExpiredLink:
        expired = render(request, "newsletter/expired.html", {"token": token}, status=410)
        return make_private(expired)
    if request.method == "POST":
        services.confirm_subscription(subscriber=subscriber)
        if subscriber.status != subscriber.Status.CONFIRMED:
            return _bad_link(request)  # unsubscribed since: they sign up again instead
        return make_private(render(request, "newsletter/confirmed.html"))
    return make_private(render(request, "newsletter/confirm.html", {"subscriber": subscriber}))


@require_POST
def resend(request, token):
    try:
        services.subscriber_for_confirm_link(token)
    except services.BadLink:
        return _bad_link(request)
    except services.ExpiredLink as expired:
        services.resend_confirmation(subscriber=expired.subscriber)
        return redirect("newsletter:check_inbox")
    return redirect("newsletter:confirm", token=token)  # still valid: nothing to resend


@csrf_exempt  # RFC 8058 one-click: mail clients POST here with no token and no login
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    try:
        subscriber = services.subscriber_for_unsubscribe_link(token)
    except services.BadLink:
        return _bad_link(request)
    if request.method == "POST":
        services.unsubscribe(subscriber=subscriber)
        return make_private(render(request, "newsletter/unsubscribed.html"))
    return make_private(render(request, "newsletter/unsubscribe.html", {"subscriber": subscriber}))
