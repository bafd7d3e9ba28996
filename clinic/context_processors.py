from django.conf import settings
from django.utils import timezone

from .services import get_clinic_profile, weekly_hours


def clinic(request):
    """The clinic's profile and weekly hours for the header and footer of every page."""
    profile = get_clinic_profile()
    return {
        "clinic": profile,
        "clinic_hours": weekly_hours(profile) if profile else [],
        "site_url": settings.SITE_URL,
        "today": timezone.localdate(),
    }
