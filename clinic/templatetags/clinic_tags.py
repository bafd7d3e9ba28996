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
    return mark_safe(f'<script type="application/ld+json">{payload}</script>')  # noqa: S308


@register.simple_tag(takes_context=True)
def absolute_url(context, path=None):
    """SITE_URL joined with `path` (default: the current request's path)."""
    if path is None:
        request = context.get("request")
        path = request.path if request else "/"
    return f"{settings.SITE_URL}{path}"


@register.simple_tag
def hero_srcset(article):
    """The srcset of an article's hero image from its stored renditions."""
    from django.core.files.storage import default_storage

    return ", ".join(
        f"{default_storage.url(size['name'])} {width}w"
        for width, size in sorted(article.hero_renditions.items(), key=lambda item: int(item[0]))
    )


def _largest(article):
    return article.hero_renditions[max(article.hero_renditions, key=int)]


@register.simple_tag
def hero_src(article):
    from django.core.files.storage import default_storage

    return default_storage.url(_largest(article)["name"])


@register.simple_tag
def hero_dimension(article, which):
    width = max(article.hero_renditions, key=int)
    return width if which == "width" else _largest(article)["height"]
