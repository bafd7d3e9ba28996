import json

from django import template
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import reverse, translate_url
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, override

from clinic.i18n import money, translated
from clinic.pagecache import query_on_page

register = template.Library()

_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@register.filter
def jsonld(value):
    """A <script type="application/ld+json"> block; escaped so no text can close the tag."""
    payload = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False).translate(_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{payload}</script>')  # noqa: S308  # nosec B308 B703 # <, >, & escaped above


@register.simple_tag(takes_context=True)
def absolute_url(context, path=None):
    """SITE_URL joined with `path` (default: the current request's path)."""
    if path is None:
        request = context.get("request")
        path = request.path if request else "/"
    return f"{settings.SITE_URL}{path}"


def _twins(request):
    """{language code: this page's path in it}, or {} for a page with no twin (admin, 404)."""
    match = getattr(request, "resolver_match", None) if request else None
    if match is None:
        return {}
    paths = {code: translate_url(request.path_info, code) for code, _name in settings.LANGUAGES}
    return paths if len(set(paths.values())) == len(paths) else {}


@register.simple_tag(takes_context=True)
def language_alternates(context):
    """[(hreflang, absolute URL)] for this page in every language, and x-default (English)."""
    paths = _twins(context.get("request"))
    if not paths:
        return []
    alternates = [(code, f"{settings.SITE_URL}{path}") for code, path in paths.items()]
    return [*alternates, ("x-default", f"{settings.SITE_URL}{paths[settings.LANGUAGE_CODE]}")]


@register.simple_tag(takes_context=True)
def other_languages(context):
    """[(code, name, URL)]: this page (its query string, as far as clinic.pagecache.query_on_page
    allows) in each other language.

    A page with no twin (a 404, a page outside the translated site) leads to the other
    language's home page instead.
    """
    request = context.get("request")
    current = get_language()
    paths = _twins(request)
    links = []
    for code, name in settings.LANGUAGES:
        if code == current:
            continue
        if paths:
            query = query_on_page(request)
            url = translate_url(
                f"{request.path_info}?{query}" if query else request.path_info, code
            )
        else:
            with override(code):
                url = reverse("home")
        links.append((code, name, url))
    return links


@register.filter(name="translated")
def translated_field(obj, field):
    """`field` of a record in the page's language (clinic.i18n.translated)."""
    return translated(obj, field)


register.filter("money", money)


@register.filter
def initials(name):
    """ "Maria Lopez" → "ML": stands in for a therapist's photo until staff add one."""
    return "".join(word[0] for word in str(name).split()[:2]).upper()


@register.filter
def og_locale(code):
    """The Open Graph locale of a language code: "es" is "es_US" (settings.LOCALE_REGION)."""
    return f"{code}_{settings.LOCALE_REGION}"
