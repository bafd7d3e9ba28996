"""A Spanish-speaking patient reads the calf article in Spanish on a phone, checks it in
English with the header's switch, and comes back."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

SLUG = "tight-calf-muscles-low-back-pain"
SPANISH_TITLE = "¿Sus pantorrillas tensas son la causa oculta de su dolor de espalda baja?"
ENGLISH_TITLE = "Are Tight Calf Muscles the Hidden Cause of Your Low Back Pain?"


def test_the_calf_article_in_spanish_and_back_from_english_on_a_phone(
    page, check_page, live_server, seeded
):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/es/articles/")
    card = page.get_by_role("link", name=SPANISH_TITLE)
    expect(card).to_have_attribute("lang", "es")
    card.click()
    page.wait_for_url(f"**/es/articles/{SLUG}/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^es"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(SPANISH_TITLE)
    expect(page.locator(".article-text")).to_have_attribute("lang", "es")
    check_page("article-calf-es")

    # The citation markers lead to the same references as in English.
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("a.cite-link").first.click()
    expect(page).to_have_url(re.compile("#ref-1$"))
    expect(page.locator("#ref-1")).to_contain_text("Janda V (1987)")

    page.locator("header a.language-switch[hreflang='en']").click()
    page.wait_for_url(re.compile(rf"/articles/{SLUG}/$"))
    assert "/es/" not in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text(ENGLISH_TITLE)

    page.locator("header a.language-switch[hreflang='es']").click()
    page.wait_for_url(f"**/es/articles/{SLUG}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(SPANISH_TITLE)
