from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Topic


class ArticleSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search articles"),
        max_length=200,
        required=False,
        strip=True,
        error_messages={
            "max_length": _("Please shorten your search to %(limit_value)d characters.")
        },
    )
    topic = forms.ModelChoiceField(
        queryset=Topic.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label=_("All topics"),
        error_messages={"invalid_choice": _("That topic does not exist; showing all topics.")},
    )
