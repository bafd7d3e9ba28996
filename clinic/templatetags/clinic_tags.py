import json

from django import template
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.safestring import mark_safe

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
