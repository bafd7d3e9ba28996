"""Browser tests: Playwright driving Debian's Chromium against a live server.

Each visited page is checked with axe-core (no serious or critical violations) and
photographed at phone and desktop widths under var/screenshots/.
"""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = {"phone": 390, "desktop": 1280}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900})
    page = context.new_page()
    page.outside_requests = []
    page.console_errors = []
    # Addresses a test visits on purpose to see a 4xx page (404, a form sent back with 400).
    page.expected_4xx = set()

    def watch(request):
        if not request.url.startswith((live_server.url, "data:", "about:")):
            page.outside_requests.append(request.url)

    def console(message):
        if message.type != "error":
            return
        expected = message.location.get("url") in page.expected_4xx
        if expected and re.search(r"status of 4\d\d", message.text):
            return
        page.console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("request", watch)
    page.on("console", console)
    page.set_default_timeout(10_000)
    try:
        yield page
        assert page.outside_requests == [], "the page asked another host for something"
        assert page.console_errors == [], "the browser console reported errors (CSP?)"
    finally:
        context.close()


@pytest.fixture
def check_page(page):
    """Run axe on the current page and photograph it at both widths."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def check(name):
        name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            # No CSSOM preload: axe would re-create @import-ed sheets (the admin's forms.css)
            # as inline <style> elements, which the admin's CSP rightly refuses.
            results = axe.run(page, options={"resultTypes": ["violations"], "preload": False})
            bad = [
                f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
                for v in results.response["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert bad == [], f"{name} at {width}px has accessibility violations"
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})

    return check
