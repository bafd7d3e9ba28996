"""Dates written the way each language writes them.

Django's own Spanish catalog capitalises weekday names ("Martes"), but Spanish writes them
in lower case mid-sentence ("Horarios del martes 8"). Our catalog (LOCALE_PATHS, which Django
reads before its own) translates them again in lower case; these markers keep those entries
in it, so makemessages never drops them. A template capitalises a date that begins a
sentence or a value with |capfirst. Month abbreviations use the format character "b" (lower
case), never "M", which Django always capitalises ("Dic").
"""

from django.utils.translation import gettext_noop

WEEKDAY_NAMES = (
    gettext_noop("Monday"),
    gettext_noop("Tuesday"),
    gettext_noop("Wednesday"),
    gettext_noop("Thursday"),
    gettext_noop("Friday"),
    gettext_noop("Saturday"),
    gettext_noop("Sunday"),
)
