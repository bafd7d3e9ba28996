"""The clinic's starting content, from its old web page. Loading it twice changes nothing."""

from datetime import time
from urllib.parse import quote_plus

from django.db import transaction

from .models import ClinicProfile, OpeningHours

ADDRESS = {"street_address": "702 Porter Ave Ste J", "locality": "Stockton", "region": "CA"}

PROFILE = {
    # The old page gives no business name; staff can change it in the admin.
    "name": "Porter Avenue Massage Clinic",
    "tagline": "Massage and soft-tissue therapy in Stockton, California",
    "phone": "1-209-915-2296",
    **ADDRESS,
    "country": "US",
    "map_url": "https://www.openstreetmap.org/search?query="
    + quote_plus("702 Porter Ave, Stockton, CA"),
    "introduction": (
        "We are a small massage and soft-tissue clinic in Stockton. We look for the "
        "reason behind your pain, which is not always where it hurts, and treat it with "
        "focused hands-on work. Read our articles to learn how muscles can cause trouble "
        "far from where they sit, then book a visit online or give us a call."
    ),
}

# A demo week for a fresh install; staff set the real hours in the admin.
DEMO_HOURS = [
    (OpeningHours.Weekday.MONDAY, time(9), time(18)),
    (OpeningHours.Weekday.TUESDAY, time(9), time(18)),
    (OpeningHours.Weekday.WEDNESDAY, time(9), time(18)),
    (OpeningHours.Weekday.THURSDAY, time(9), time(18)),
    (OpeningHours.Weekday.FRIDAY, time(9), time(18)),
    (OpeningHours.Weekday.SATURDAY, time(9), time(14)),
]


# The Spanish beside it, for the /es/ pages; filled only where staff left it blank.
PROFILE_ES = {
    "tagline_es": "Masaje y terapia de tejidos blandos en Stockton, California",
    "introduction_es": (
        "Somos una pequeña clínica de masaje y terapia de tejidos blandos en Stockton. "
        "Buscamos la causa de su dolor, que no siempre está donde duele, y la tratamos con "
        "trabajo manual enfocado. Lea nuestros artículos para saber cómo un músculo puede "
        "causar molestias lejos de donde está, y reserve su visita en línea o llámenos."
    ),
}

# What a new patient asks before coming; filled only where staff left it blank.
BEFORE_VISIT = {
    "before_visit": (
        "Please come 5 to 10 minutes early, so we can talk about what brings you in and start "
        "on time.\n\n"
        "Wear something loose and comfortable, such as shorts and a T-shirt or tank top: "
        "much of our work can be done through it. We always leave you covered, and you "
        "undress only as far as you are comfortable.\n\n"
        "Parking and the way in: call us before your first visit and we will tell you where "
        "to park and how to find Suite J.\n\n"
        "If you use a wheelchair or walker, or steps are hard for you, let us know before "
        "your visit so we can have the room and the table ready for you."
    ),
    "before_visit_es": (
        "Llegue de 5 a 10 minutos antes, para hablar de lo que le trae y empezar a la hora.\n\n"
        "Traiga o póngase ropa holgada y cómoda, como pantalón corto y camiseta: buena parte "
        "del trabajo se puede hacer sobre ella. Siempre queda cubierto o cubierta, y solo se "
        "quita la ropa que le resulte cómodo.\n\n"
        "Estacionamiento y acceso: llámenos antes de su primera visita y le diremos dónde "
        "estacionar y cómo llegar a la Suite J.\n\n"
        "Si usa silla de ruedas o andador, o le cuestan los escalones, avísenos antes de su "
        "visita para tener la sala y la camilla listas para usted."
    ),
}


def fill_blank(model, pk, values):
    """Set each field of one row to its value only where the field is still empty."""
    for field, value in values.items():
        model.objects.filter(pk=pk, **{field: ""}).update(**{field: value})


@transaction.atomic
def load_clinic_content():
    """Create the clinic's profile and demo hours if missing; never overwrite staff edits."""
    profile, created = ClinicProfile.objects.get_or_create(
        pk=ClinicProfile.SINGLETON_PK, defaults=PROFILE
    )
    if created:
        OpeningHours.objects.bulk_create(
            OpeningHours(clinic=profile, weekday=day, opens=opens, closes=closes)
            for day, opens, closes in DEMO_HOURS
        )
        from .services import forget_clinic_profile

    fill_blank(ClinicProfile, profile.pk, PROFILE_ES)
    fill_blank(ClinicProfile, profile.pk, BEFORE_VISIT)
    from .services import forget_clinic_profile

    forget_clinic_profile()
    return profile
