"""Staff sign in, preview a draft exactly as patients will see it, and publish it."""

import re

import pytest
from playwright.sync_api import expect

from articles.models import Article

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_preview_a_draft_then_publish_it(page, check_page, live_server, seeded, make_article):
    draft = make_article(
        title="Hamstrings and your back",
        body="## Why hamstrings matter\n\nThey pull on the pelvis.",
        status=Article.Status.DRAFT,
        published_at=None,
    )
    page.expected_4xx.add(live_server.url + draft.get_absolute_url())
    assert page.goto(live_server.url + draft.get_absolute_url()).status == 404

    page.goto(live_server.url + "/admin/login/?next=/admin/")
    check_page("admin-login")
    page.get_by_label("Username").fill("staffer")
    page.get_by_label("Password").fill("a-long-staff-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Porter Avenue Massage Clinic — staff")).to_be_visible()

    page.goto(live_server.url + draft.get_absolute_url())
    expect(page.get_by_role("status")).to_contain_text("this article is a draft")
    expect(page.get_by_role("heading", name="Why hamstrings matter")).to_be_visible()
    check_page("article-draft-preview")

    page.goto(live_server.url + "/admin/articles/article/")
    check_page("admin-articles")
    page.get_by_role("row", name="Hamstrings and your back").get_by_role("checkbox").check()
    page.get_by_label("Action:").select_option("publish")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("1 article(s) published.")).to_be_visible()

    page.context.clear_cookies()
    assert page.goto(live_server.url + draft.get_absolute_url()).status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Hamstrings and your back")
    check_page("article-just-published")


def test_the_newsletter_issue_list_tools_leave_its_heading_readable_at_1280(
    page, check_page, live_server, seeded, staff_user, make_article
):
    # Several published articles: each is offered as a one-click draft beside "Add".
    for n in range(3):
        make_article(title=f"Stretching the calves, part {n + 1}", slug=f"calf-part-{n + 1}")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/admin/login/?next=/admin/newsletter/newsletterissue/")
    page.get_by_label("Username").fill("staffer")
    page.get_by_label("Password").fill("a-long-staff-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/newsletter/newsletterissue/")
    heading = page.locator("#content h1").bounding_box()
    assert heading["width"] > 0
    tools = [page.get_by_role("link", name="Add newsletter issue")]
    tools += [
        page.get_by_role("button", name=re.compile("Draft an issue from")).nth(n) for n in range(3)
    ]

    def apart(a, b):
        return (
            a["y"] >= b["y"] + b["height"]
            or a["y"] + a["height"] <= b["y"]
            or a["x"] >= b["x"] + b["width"]
            or a["x"] + a["width"] <= b["x"]
        )

    boxes = [tool.bounding_box() for tool in tools]
    for tool, box in zip(tools, boxes, strict=True):
        assert apart(box, heading), f"{tool} covers the list's heading"
    # Nor do the tools cover one another when they wrap onto a second row.
    for n, box in enumerate(boxes):
        assert all(apart(box, other) for other in boxes[n + 1 :]), boxes
    check_page("admin-newsletter-issues")


def test_a_therapist_makes_their_calendar_link_and_subscribes_to_it(
    page, check_page, live_server, clinic, therapist, django_user_model
):
    """From the admin home to the private link, on a phone; the link answers a calendar."""
    therapist.user = django_user_model.objects.create_user(
        username="maria", password="a-long-staff-password", is_staff=True
    )
    therapist.save()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("a-long-staff-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Your visits in your phone's calendar (private link)").click()
    page.get_by_role("button", name="Make my calendar link").click()
    link = page.get_by_label("Your private calendar link")
    expect(link).to_have_value(re.compile(r"/book/therapist-calendar/[\w-]{43}/visits\.ics$"))
    check_page("admin-therapist-calendar-feed")
    feed = link.input_value().split("/book/", 1)[1]
    response = page.request.get(f"{live_server.url}/book/{feed}")
    assert response.ok and response.text().startswith("BEGIN:VCALENDAR")
    assert "no-store" in response.headers["cache-control"]
