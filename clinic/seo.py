"""schema.org descriptions of the clinic, built from its profile (JSON-LD)."""

from django.conf import settings

from .models import OpeningHours

_SCHEMA_DAYS = {
    OpeningHours.Weekday.MONDAY: "Monday",
    OpeningHours.Weekday.TUESDAY: "Tuesday",
    OpeningHours.Weekday.WEDNESDAY: "Wednesday",
    OpeningHours.Weekday.THURSDAY: "Thursday",
    OpeningHours.Weekday.FRIDAY: "Friday",
    OpeningHours.Weekday.SATURDAY: "Saturday",
    OpeningHours.Weekday.SUNDAY: "Sunday",
}


def clinic_publisher(profile):
    """The clinic as a short organisation node (publisher of articles)."""
    return {
        "@type": "HealthAndBeautyBusiness",
        "@id": f"{settings.SITE_URL}/#clinic",
        "name": profile.name,
        "url": f"{settings.SITE_URL}/",
        "telephone": profile.phone,
    }


def clinic_jsonld(profile):
    """The clinic as a HealthAndBeautyBusiness with address, phone and opening hours."""
    data = {
        "@context": "https://schema.org",
        **clinic_publisher(profile),
        "description": profile.tagline or profile.introduction[:300],
        "address": {
            "@type": "PostalAddress",
            "streetAddress": profile.street_address,
            "addressLocality": profile.locality,
            "addressRegion": profile.region,
            "addressCountry": profile.country,
        },
        "hasMap": profile.map_url,
        "openingHoursSpecification": [
            {
                "@type": "OpeningHoursSpecification",
                "dayOfWeek": f"https://schema.org/{_SCHEMA_DAYS[hours.weekday]}",
                "opens": hours.opens.strftime("%H:%M"),
                "closes": hours.closes.strftime("%H:%M"),
            }
            for hours in profile.cached_hours
        ],
    }
    if profile.postal_code:
        data["address"]["postalCode"] = profile.postal_code
    if profile.email:
        data["email"] = profile.email
    return data
