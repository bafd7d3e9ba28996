from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def signup(request):
    """The newsletter's page (sign-up with double opt-in grows here)."""
    return render(request, "newsletter/signup.html")
