"""Reading the clinic's profile through the cache, and dropping it when staff edit it.

The cache is optional (clinic.cache): with Redis down or hanging, every read is a miss and
the profile comes from the database, so pages stay up.
"""

from django.core.cache import cache

from .models import ClinicProfile, OpeningHours

PROFILE_CACHE_KEY = "clinic:profile:v1"
# The last profile read, kept without expiry for one use: the "please call" page while the
# database is down (clinic.unavailable). Never shown while the database answers.
LAST_KNOWN_CACHE_KEY = "clinic:profile:last-known:v1"
_last_known = None
# Short, because dropping the copy can fail: an edit saved while Redis is unreachable shows
# at most this long after Redis is back (a few queries every five minutes is nothing).
PROFILE_CACHE_SECONDS = 5 * 60


def get_clinic_profile():
    """The clinic's profile with hours and upcoming closures loaded, cached for five minutes.

    Returns None while no profile exists (a fresh database before load_content).
    """
    profile = cache.get(PROFILE_CACHE_KEY)
    if profile is None:
        profile = ClinicProfile.objects.prefetch_related("hours", "closures").first()
        if profile is None:
            return None
        # Evaluate the prefetches now so the cached copy needs no further query.
        profile.cached_hours = list(profile.hours.all())
        profile.cached_closures = list(profile.closures.all())
        cache.set(PROFILE_CACHE_KEY, profile, PROFILE_CACHE_SECONDS)
        cache.set(LAST_KNOWN_CACHE_KEY, profile, None)
    global _last_known
    _last_known = profile
    return profile


def last_known_clinic_profile():
    """The profile as last read by this process or any other, or None: for when the database
    cannot be asked. Its phone may be stale by a staff edit made during the outage."""
    if _last_known is not None:
        return _last_known
    try:
        return cache.get(LAST_KNOWN_CACHE_KEY)
    except Exception:  # noqa: BLE001  # the cache is optional, doubly so on an error page
        return None


def forget_clinic_profile():
    """Drop the cached profile so the next page shows what staff just saved."""
    cache.delete(PROFILE_CACHE_KEY)


def weekly_hours(profile):
    """[(weekday label, [intervals])] for Monday..Sunday; an empty list means closed."""
    by_day = {day: [] for day in OpeningHours.Weekday.values}
    for interval in profile.cached_hours:
        by_day[interval.weekday].append(interval)
    return [(OpeningHours.Weekday(day).label, by_day[day]) for day in OpeningHours.Weekday.values]
