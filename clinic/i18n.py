"""One way to read a record's field in a language, driven by settings.LANGUAGES.

Staff write each translatable field once per language: `name` in the site's language
(settings.LANGUAGE_CODE) and `name_<code>` beside it for each other language in
settings.LANGUAGES. An empty translation reads as the original, so a missing one never
leaves a gap. No language code is written here: switching a language on takes settings, a
catalog (locale/<code>/) and, for the content staff write, its columns.

Templates reach these through clinic_tags (|translated, |money); Python code imports them
from here, never from a template tag library.
"""

from decimal import Decimal

from django.conf import settings
from django.utils import translation


def site_language(code=None):
    """The code in settings.LANGUAGES that `code` (default: the active language) names, or
    the site's language for one the site does not offer ("es-mx" is "es")."""
    code = (code or translation.get_language() or settings.LANGUAGE_CODE).lower()
    offered = [known for known, _name in settings.LANGUAGES]
    if code in offered:
        return code
    base = code.split("-")[0]
    return base if base in offered else settings.LANGUAGE_CODE


def other_languages():
    """The codes of settings.LANGUAGES other than the site's own, in order."""
    return [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def language_name(code):
    """The English name of a language, for staff ("Spanish"); settings' own name otherwise."""
    try:
        return translation.get_language_info(code)["name"]
    except KeyError:
        return dict(settings.LANGUAGES).get(code, code)


def field_name(field, language):
    """The attribute holding `field` in `language`: `field` itself in the site's language."""
    language = site_language(language)
    return field if language == settings.LANGUAGE_CODE else f"{field}_{language}"


def translated_languages(obj, field):
    """The languages besides the site's that `obj` (a record or its model) has a `field` in."""
    return [code for code in other_languages() if hasattr(obj, field_name(field, code))]


def translated(obj, field, language=None):
    """`field` of `obj` in `language` (default: the active one), else in the site's language."""
    if obj is None:
        return ""
    value = getattr(obj, field_name(field, language), "")
    return value or getattr(obj, field, "")


def money(amount):
    """A price in US dollars as patients read it in either language: "$90", "$92.50".

    Not localised on purpose: Spanish speakers in the US write dollars with a decimal point.
    """
    if amount is None or amount == "":
        return ""
    amount = Decimal(amount)
    return f"${amount:,.0f}" if amount == amount.to_integral_value() else f"${amount:,.2f}"
