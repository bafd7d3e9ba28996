"""A believable demo schedule for a fresh install. Loading it twice changes nothing."""

from datetime import time
from decimal import Decimal

from django.db import transaction

from articles.models import Article
from clinic.content import fill_blank
from clinic.models import Weekday

from .models import BookingRules, ConsentText, Room, Service, Therapist, WorkingHours

POLICY = (
    "Please give us at least 24 hours' notice if you need to cancel or move your "
    "appointment, so another patient can have the time. Cancellations with less notice, "
    "and missed appointments, may be charged in full."
)

SERVICES = [
    {
        "slug": "massage-30",
        "room_need": "single",
        "name": "30-minute massage",
        "duration_minutes": 30,
        "buffer_minutes": 15,
        "price": Decimal("50"),
        "description": "A focused session on one area, such as the neck and shoulders.",
        # No deep calf work: none of the calf and clot questions apply (staff can change it).
        "asks_clot_signs": False,
        "asks_surgery_or_immobility": False,
        "asks_blood_thinners": False,
        "asks_pregnant": False,
    },
    {
        "slug": "massage-60",
        "room_need": "single",
        "name": "60-minute massage",
        "duration_minutes": 60,
        "buffer_minutes": 15,
        "price": Decimal("90"),
        "description": "Our most booked session: time for the back, hips and legs.",
    },
    {
        "slug": "massage-90",
        "room_need": "single",
        "name": "90-minute massage",
        "duration_minutes": 90,
        "buffer_minutes": 15,
        "price": Decimal("130"),
        "description": "A long session for the whole body, or for stubborn trouble spots.",
    },
    {
        "slug": "calf-low-back-trigger-point",
        "room_need": "single",
        "name": "Calf and low-back trigger-point session",
        "duration_minutes": 60,
        "buffer_minutes": 15,
        "price": Decimal("95"),
        "description": (
            "Trigger-point work on the calves, hamstrings and low back, for low back pain "
            "that may start lower down the chain."
        ),
    },
]

COUPLES_SERVICE = "side-by-side-massage"
SERVICES.append(
    {
        "slug": COUPLES_SERVICE,
        "room_need": "couples",
        "for_two": True,
        "name": "Side-by-side massage for two",
        "duration_minutes": 60,
        "buffer_minutes": 15,
        "price": Decimal("180"),
        "description": (
            "Two people at the same time in one room, each on their own table with their own "
            "therapist. One of you books for both; each answers the health questions."
        ),
    }
)

# Fewer rooms than therapists, as in many small clinics: the booking gives out the rooms.
ROOMS = [
    ("Treatment room", Room.Kind.SINGLE),
    ("Couples room", Room.Kind.COUPLES),
]

# (name, slug, bio, services offered, weekdays worked): a lunch break splits each day.
THERAPISTS = [
    (
        "Maria Lopez",
        "maria-lopez",
        "Licensed massage therapist who works mostly with low back and hip pain.",
        ["massage-30", "massage-60", "massage-90", "calf-low-back-trigger-point", COUPLES_SERVICE],
        [Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY],
    ),
    (
        "James Carter",
        "james-carter",
        "Licensed massage therapist with a background in sports massage and trigger points.",
        ["massage-30", "massage-60", "calf-low-back-trigger-point", COUPLES_SERVICE],
        # Saturday too: the clinic opens 9–2 on Saturdays (clinic.content.DEMO_HOURS).
        [Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY, Weekday.SATURDAY],
    ),
    (
        "Ana Nguyen",
        "ana-nguyen",
        "Licensed massage therapist; relaxing full-body work and longer sessions.",
        ["massage-60", "massage-90", COUPLES_SERVICE],
        [Weekday.MONDAY, Weekday.WEDNESDAY, Weekday.FRIDAY],
    ),
]

# Spanish beside the English, for the /es/ pages; filled only where staff left it blank.
POLICY_ES = (
    "Si necesita cancelar o cambiar su cita, avísenos con al menos 24 horas de anticipación "
    "para que otro paciente pueda usar ese horario. Las cancelaciones con menos aviso y las "
    "citas a las que no se presente pueden cobrarse completas."
)
SERVICES_ES = {
    "massage-30": (
        "Masaje de 30 minutos",
        "Una sesión enfocada en una sola zona, como el cuello y los hombros.",
    ),
    "massage-60": (
        "Masaje de 60 minutos",
        "Nuestra sesión más solicitada: tiempo para la espalda, las caderas y las piernas.",
    ),
    "massage-90": (
        "Masaje de 90 minutos",
        "Una sesión larga para todo el cuerpo, o para molestias que no ceden.",
    ),
    "calf-low-back-trigger-point": (
        "Sesión de puntos gatillo en pantorrilla y zona lumbar",
        "Trabajo de puntos gatillo en pantorrillas, isquiotibiales y zona lumbar, para el "
        "dolor lumbar que puede empezar más abajo.",
    ),
    COUPLES_SERVICE: (
        "Masaje para dos, uno al lado del otro",
        "Dos personas a la vez en una misma sala, cada una en su camilla y con su propio "
        "terapeuta. Una de las dos reserva para ambas; cada una responde a las preguntas de "
        "salud.",
    ),
}
BIOS_ES = {
    "maria-lopez": "Masajista con licencia; trabaja sobre todo con dolor lumbar y de cadera.",
    "james-carter": "Masajista con licencia, con experiencia en masaje deportivo y puntos gatillo.",
    "ana-nguyen": "Masajista con licencia; masaje relajante de cuerpo completo y sesiones largas.",
}

CALF_SERVICE = "calf-low-back-trigger-point"
CALF_ARTICLE = "tight-calf-muscles-low-back-pain"

DAY = [(time(9), time(12, 30)), (time(13, 30), time(18))]
# Saturday's shorter day, inside the clinic's Saturday opening hours (9–2).
SATURDAY = [(time(9), time(14))]


CONSENT_EN = (
    "I have answered the health questions truthfully and completely, to the best of my "
    "knowledge, and I will tell my therapist before a visit if anything changes.\n\n"
    "I understand that massage therapy is not a substitute for medical care, that my "
    "therapist does not diagnose illness or prescribe medication, and that I should see a "
    "doctor for any condition that needs one.\n\n"
    "I agree to receive massage therapy at the clinic. I may ask my therapist to change the "
    "pressure, avoid an area or stop the treatment at any time.\n\n"
    "I understand that the clinic keeps this health history as part of my clinical record, "
    "that only the clinic's staff can read it, and that I can ask for a copy or for it to be "
    "erased."
)
CONSENT_ES = (
    "He respondido a las preguntas de salud con verdad y por completo, según mi leal saber, "
    "y avisaré a mi terapeuta antes de una visita si algo cambia.\n\n"
    "Entiendo que la masoterapia no sustituye la atención médica, que mi terapeuta no "
    "diagnostica enfermedades ni receta medicamentos, y que debo consultar a un médico por "
    "cualquier problema que lo requiera.\n\n"
    "Acepto recibir masoterapia en la clínica. Puedo pedir a mi terapeuta que cambie la "
    "presión, evite una zona o detenga el tratamiento en cualquier momento.\n\n"
    "Entiendo que la clínica guarda este historial de salud como parte de mi historia "
    "clínica, que solo el personal de la clínica puede leerlo y que puedo pedir una copia o "
    "que se borre."
)


def ensure_consent_text():
    """The clinic's first consent wording (version 1), unless staff already have one."""
    if not ConsentText.objects.exists():
        ConsentText.objects.create(version=1, text=CONSENT_EN, text_es=CONSENT_ES)


@transaction.atomic
def load_booking_content():
    """Booking rules, services, rooms and therapists with hours, where missing; returns how
    many therapists were added. Rows staff already have are left as they are."""
    BookingRules.objects.get_or_create(
        pk=BookingRules.SINGLETON_PK, defaults={"cancellation_policy": POLICY}
    )
    ensure_consent_text()
    services, created = {}, set()
    for order, fields in enumerate(SERVICES):
        values = {**fields, "display_order": order}
        services[fields["slug"]], new = Service.objects.get_or_create(
            slug=fields["slug"], defaults=values
        )
        if new:
            created.add(fields["slug"])
    if CALF_SERVICE in created:
        # The calf article's call to book opens this treatment (staff can change it).
        Article.objects.filter(slug=CALF_ARTICLE, recommended_service=None).update(
            recommended_service=services[CALF_SERVICE]
        )
    for order, (name, kind) in enumerate(ROOMS):
        Room.objects.get_or_create(name=name, defaults={"kind": kind, "display_order": order})
    added = 0
    for order, (name, slug, bio, offered, weekdays) in enumerate(THERAPISTS):
        therapist, created = Therapist.objects.get_or_create(
            slug=slug, defaults={"name": name, "bio": bio, "display_order": order}
        )
        if not created:
            continue
        added += 1
        therapist.services.set([services[s] for s in offered])
        WorkingHours.objects.bulk_create(
            WorkingHours(therapist=therapist, weekday=day, opens=opens, closes=closes)
            for day in weekdays
            for opens, closes in (SATURDAY if day == Weekday.SATURDAY else DAY)
        )
    fill_blank(BookingRules, BookingRules.SINGLETON_PK, {"cancellation_policy_es": POLICY_ES})
    for slug, (name, description) in SERVICES_ES.items():
        if slug in services:
            fill_blank(Service, services[slug].pk, {"name_es": name, "description_es": description})
    for therapist in Therapist.objects.filter(slug__in=BIOS_ES):
        fill_blank(Therapist, therapist.pk, {"bio_es": BIOS_ES[therapist.slug]})
    return added
