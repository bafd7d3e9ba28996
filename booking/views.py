from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def start(request):
    """Where "Book now" leads: how to book today (online booking grows here)."""
    return render(request, "booking/start.html")
