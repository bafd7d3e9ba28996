from django import template

from newsletter.services import CONSENT_TEXT

register = template.Library()


@register.simple_tag
def newsletter_consent():
    """The exact wording a subscriber agrees to (stored with each sign-up)."""
    return CONSENT_TEXT
