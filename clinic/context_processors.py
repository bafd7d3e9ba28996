from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from .services import get_clinic_profile, last_known_clinic_profile, weekly_hours


def clinic(request):
    """The clinic's profile and weekly hours for the header and footer of every page.

    With the database down (the 503 page), the last profile read, so the page still shows
    the phone to call.
    """
    if getattr(request, "database_unavailable", False):
        # The 503 page: not one more wait on a database that just failed this request.
        profile = last_known_clinic_profile()
    else:
        try:
            profile = get_clinic_profile()
        except DatabaseError:
            profile = last_known_clinic_profile()
            if profile is None:
                raise  # no copy at all: a page needs one, so the 503 page answers instead
    return {
        "clinic": profile,
        "clinic_hours": weekly_hours(profile) if profile else [],
        "site_url": settings.SITE_URL,
        "today": timezone.localdate(),
    }
