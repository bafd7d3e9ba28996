"""A third language takes settings and a catalog, nothing else: no code names a language.

"xx" is a made-up language: LANGUAGES gains it, LOCALE_PATHS gains a catalog for it, and the
site serves /xx/ with that catalog's words; every field staff write reads as the original
(there are no `_xx` columns), the newsletter sends xx readers the original issue.
"""

import subprocess
from pathlib import Path

import pytest
from django.utils import translation

from booking.models import Service
from clinic.i18n import other_languages, site_language, translated
from newsletter.models import NewsletterIssue
from newsletter.services import preview_issue, save_issue
from tests.clinic.test_i18n import gettext_tools  # noqa: F401  # the fixture
from tests.html import parse

pytestmark = pytest.mark.django_db

CATALOG = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Home"
msgstr "Xhome"

msgid "View on map"
msgstr "Xview xon xmap"
"""


@pytest.fixture
def third_language(settings, tmp_path, gettext_tools):  # noqa: F811
    messages = Path(tmp_path) / "xx" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "django.po").write_text(CATALOG, encoding="utf-8")
    subprocess.run(
        ["msgfmt", "-o", str(messages / "django.mo"), str(messages / "django.po")], check=True
    )
    settings.LANGUAGES = [*settings.LANGUAGES, ("xx", "Xx")]
    settings.LOCALE_PATHS = [*settings.LOCALE_PATHS, str(tmp_path)]
    yield "xx"
    translation.trans_real._translations = {}


def test_the_helpers_follow_the_settings(third_language, service):
    assert other_languages()[-1] == "xx"
    assert site_language("xx") == "xx" and site_language("xx-yy") == "xx"
    service.name_es = "Masaje"
    assert translated(service, "name", "es") == "Masaje"
    assert translated(service, "name", "xx") == service.name  # no column: the original
    with translation.override("xx"):
        assert translated(service, "name") == service.name


def test_a_page_in_the_third_language_uses_its_catalog_and_the_original_content(
    third_language, client, seeded
):
    response = client.get("/xx/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="xx"' in page
    assert "Xhome" in page and "Xview xon xmap" in page
    service = Service.objects.active().first()
    booking = client.get("/xx/book/").content.decode()
    assert service.name in booking
    tree = parse(response)
    alternates = {link["hreflang"] for link in tree.links if link.get("hreflang")}
    assert {"en", "es", "xx", "x-default"} <= alternates
    assert tree.meta["og:locale"] == "xx_US"


def test_the_newsletter_sends_the_original_issue_to_third_language_readers(third_language):
    issue = save_issue(
        issue=NewsletterIssue(
            subject="Spring news", body="Hello.", subject_es="Noticias", body_es="Hola."
        )
    )
    assert not issue.has_version("xx")
    assert [code for code, _name in issue.versions] == ["es"]
    assert preview_issue(issue=issue, language="xx")["subject"] == "Spring news"
    assert preview_issue(issue=issue, language="es")["subject"] == "Noticias"


def test_code_reads_fields_through_the_domain_function_never_a_template_filter():
    from tests.clinic.test_personal_data import imported_modules

    ours = ("booking", "newsletter", "articles", "clinic")
    for package in ours:
        tags = {m for m in imported_modules(package) if m.startswith(ours) and ".templatetags" in m}
        assert tags == set(), package
