"""A patient finds the calf article from the home page, reads its sources and goes to book."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

CALF_TITLE = "Are Tight Calf Muscles the Hidden Cause of Your Low Back Pain?"


def test_home_to_articles_to_the_calf_article_and_on_to_booking(
    page, check_page, live_server, seeded
):
    page.goto(live_server.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Porter Avenue Massage Clinic"
    assert (
        page.get_by_role("link", name="1-209-915-2296").first.get_attribute("href")
        == "tel:+12099152296"
    )
    check_page("home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Articles").click()
    page.wait_for_url("**/articles/")
    check_page("articles")

    page.get_by_role("link", name=CALF_TITLE).click()
    page.wait_for_url("**/articles/tight-calf-muscles-low-back-pain/")
    assert page.get_by_role("heading", level=1).inner_text() == CALF_TITLE
    check_page("article-calf")

    references = page.get_by_role("region", name="References").get_by_role("listitem")
    assert references.count() == 2
    assert "Janda V (1987)" in references.nth(0).inner_text()
    page.locator("a.cite-link").first.click()
    expect(page).to_have_url(re.compile("#ref-1$"))
    expect(page.locator("#ref-1")).to_be_in_viewport()

    page.get_by_role("complementary", name="Want us to take a look?").get_by_role(
        "link", name="Book now"
    ).click()
    # The article recommends a treatment: the booking opens with it chosen, and remembers
    # which article the patient came from.
    page.wait_for_url(
        re.compile(r"/book/calf-low-back-trigger-point/\?from=tight-calf-muscles-low-back-pain$")
    )
    check_page("book")


def test_keyboard_users_can_skip_to_the_content(page, check_page, live_server, seeded):
    page.goto(live_server.url + "/articles/")
    check_page("articles-keyboard")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("element => element === document.activeElement")
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0  # visible once focused
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))


def test_searching_articles_and_a_search_that_finds_nothing(page, check_page, live_server, seeded):
    page.goto(live_server.url + "/articles/")
    page.get_by_label("Search articles").fill("soleus trigger")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 article found for “soleus trigger”")).to_be_visible()
    expect(page.get_by_role("link", name=CALF_TITLE)).to_be_visible()
    page.get_by_label("Search articles").fill("<script>alert(1)</script> ☃")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No articles match your search")).to_be_visible()
    expect(page.get_by_label("Search articles")).to_have_value("<script>alert(1)</script> ☃")
    check_page("articles-search-empty")


def test_topic_page_and_the_styled_not_found_page(page, check_page, live_server, seeded):
    page.goto(live_server.url + "/articles/topics/trigger-points/")
    expect(page.get_by_role("link", name=CALF_TITLE)).to_be_visible()
    check_page("topic-trigger-points")
    missing = live_server.url + "/articles/no-such-article/"
    page.expected_4xx.add(missing)
    response = page.goto(missing)
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "We could not find that page"
    check_page("not-found")


def test_newsletter_page(page, check_page, live_server, seeded):
    page.goto(live_server.url + "/newsletter/")
    check_page("newsletter")
