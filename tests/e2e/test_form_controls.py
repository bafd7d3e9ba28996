"""Form controls people can see (WCAG 2.2 SC 1.4.11 and 2.5.8), read from the browser.

axe and pa11y do not check a control's own boundary or its focus ring, so this does: on
every patient form (booking details, move, cancel, newsletter sign-up, confirm and
unsubscribe, search), in English and Spanish at 390 px, every visible control's border (or
its fill) and its focus outline must reach 3:1 against what surrounds it, and every control
must be at least 24 × 24 CSS px.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from booking import availability, links, services
from booking.models import Service, Therapist
from newsletter import services as newsletter
from newsletter.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}

# Runs in the page: one finding per control that falls short, [] when all is well.
MEASURE = """
() => {
  const parse = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const contrast = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  // The colour behind an element: its ancestors' backgrounds laid over white.
  const backdrop = (el) => {
    const chain = [];
    for (let node = el.parentElement; node; node = node.parentElement) chain.unshift(node);
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (const node of chain) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg.a > 0) colour = over(bg, colour);
    }
    return colour;
  };
  const visible = (el) => {
    if (el.closest('[aria-hidden="true"]') || el.tabIndex < 0) return false;
    const box = el.getBoundingClientRect();
    return box.width > 1 && box.height > 1 && getComputedStyle(el).visibility !== "hidden";
  };
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}` +
    `${el.name ? "[name=" + el.name + "]" : ""}${el.type ? "[type=" + el.type + "]" : ""}` +
    ` "${(el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30)}"`;
  const controls = [...document.querySelectorAll(
    'input:not([type="hidden"]), select, textarea, button, .btn'
  )].filter(visible);
  const findings = [];
  for (const el of controls) {
    const outside = backdrop(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (box.width < 24 || box.height < 24)
      findings.push(`${name(el)}: ${box.width.toFixed(1)} × ${box.height.toFixed(1)} px`);
    const fill = over(parse(style.backgroundColor) || {r: 0, g: 0, b: 0, a: 0}, outside);
    const border = over(parse(style.borderTopColor), outside);
    const bordered = parseFloat(style.borderTopWidth) >= 1 && style.borderTopStyle !== "none";
    const boundary = Math.max(contrast(fill, outside), bordered ? contrast(border, outside) : 0);
    if (boundary < 3) findings.push(`${name(el)}: boundary ${boundary.toFixed(2)}:1`);
    el.focus({focusVisible: true});
    const focused = getComputedStyle(el);
    const ring = parse(focused.outlineColor);
    const width = parseFloat(focused.outlineWidth);
    const ringContrast = ring && focused.outlineStyle !== "none" && width >= 2
      ? contrast(over(ring, outside), outside) : 0;
    if (document.activeElement !== el) findings.push(`${name(el)}: cannot take focus`);
    else if (ringContrast < 3)
      findings.push(`${name(el)}: focus ring ${focused.outlineStyle} ${width}px ` +
                    `${ringContrast.toFixed(2)}:1`);
    el.blur();
  }
  return {count: controls.length, findings};
}
"""


def assert_controls_visible(page, label, *, at_least):
    page.set_viewport_size(PHONE)
    result = page.evaluate(MEASURE)
    assert result["count"] >= at_least, f"{label}: only {result['count']} controls found"
    assert result["findings"] == [], f"{label}: controls people may not see"


def free_start(service, therapist, *, after_days=0):
    """A free start for `service` with `therapist`, found from the schedule, not the calendar."""
    today = timezone.localdate() + timedelta(days=after_days)
    free = availability.free_starts(
        service=service, therapists=[therapist], first_day=today, last_day=today + timedelta(40)
    )[therapist.pk]
    return free[0], free[-1]


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_control_on_every_patient_form_can_be_seen_and_hit(
    page, check_page, live_server, seeded, language
):
    prefix = "" if language == "en" else "/es"
    service = Service.objects.get(slug="calf-low-back-trigger-point")
    therapist = Therapist.objects.get(slug="maria-lopez")
    first, last = free_start(service, therapist, after_days=3)
    local = timezone.localtime(first)
    base = live_server.url + prefix

    # Booking details, as offered and as sent back with mistakes (red borders too).
    details = f"{base}/book/{service.slug}/{therapist.slug}/{local:%Y-%m-%d}/{local:%H%M}/"
    page.set_viewport_size(PHONE)
    page.goto(details)
    expect(page.locator('input[name="intake_pregnant"]').first).to_be_visible()
    assert_controls_visible(page, "details", at_least=14)
    check_page(f"controls-{language}-details")
    page.expected_4xx.add(details)
    page.locator("#id_name").fill("Pat Example")
    page.locator(".booking-form button[type=submit]").click()
    expect(page.locator(".is-invalid").first).to_be_visible()
    assert_controls_visible(page, "details with errors", at_least=14)
    check_page(f"controls-{language}-details-errors")

    # The manage pages: move, and cancel's question.
    appointment = services.book_appointment(
        service=service,
        therapist=therapist,
        start=first,
        patient=services.PatientDetails(name="Pat", email="pat@example.com", phone="+12095550142"),
        language=language,
    )
    token = links.manage_token(appointment)
    manage = f"{base}/book/manage/{token}/"
    page.goto(manage)
    assert_controls_visible(page, "manage", at_least=3)
    page.goto(manage + "cancel/")
    expect(page.locator("#id_reason")).to_be_visible()
    assert_controls_visible(page, "cancel", at_least=3)
    check_page(f"controls-{language}-cancel")
    to = timezone.localtime(last)
    page.goto(f"{manage}move/{to:%Y-%m-%d}/{to:%H%M}/")
    assert_controls_visible(page, "move", at_least=2)
    check_page(f"controls-{language}-move")

    # The health history and consent, from the confirmation email's link.
    from booking.health import health_history_url

    page.goto(health_history_url(appointment).replace(settings.SITE_URL, live_server.url))
    expect(page.locator("#id_signed_name")).to_be_visible()
    assert_controls_visible(page, "health history", at_least=18)
    check_page(f"controls-{language}-health-history")

    # The newsletter page (its form and the footer's), and article search.
    page.goto(f"{base}/newsletter/")
    assert_controls_visible(page, "newsletter", at_least=4)
    check_page(f"controls-{language}-newsletter")
    # The newsletter's confirm and unsubscribe buttons, reached from its emails.
    newsletter.subscribe(email="reader@example.com", language=language)
    subscriber = Subscriber.objects.get(email="reader@example.com")
    for link in (newsletter.confirm_url(subscriber), newsletter.unsubscribe_url(subscriber)):
        page.goto(link.replace(settings.SITE_URL, live_server.url))
        assert_controls_visible(page, link.split("/")[-3], at_least=3)
    page.goto(f"{base}/articles/?q=calf")
    expect(page.locator('input[name="q"]')).to_be_visible()
    assert_controls_visible(page, "search", at_least=4)
    check_page(f"controls-{language}-search")


def test_the_measure_catches_a_faint_border_a_faint_ring_and_a_small_radio(
    page, live_server, seeded
):
    """The check itself: Bootstrap's own 1.3:1 border, a yellow ring alone on white and a
    17 px radio are each reported."""
    service = Service.objects.get(slug="calf-low-back-trigger-point")
    therapist = Therapist.objects.get(slug="maria-lopez")
    local = timezone.localtime(free_start(service, therapist, after_days=3)[0])
    page.set_viewport_size(PHONE)
    page.goto(
        f"{live_server.url}/book/{service.slug}/{therapist.slug}/{local:%Y-%m-%d}/{local:%H%M}/"
    )
    # Through the CSSOM (the Content-Security-Policy refuses injected style sheets).
    page.evaluate(
        """() => {
        const name = document.querySelector("#id_name").style;
        name.setProperty("transition", "none", "important");  // read the colour, not a fade
        name.setProperty("border-color", "#dee2e6", "important");
        name.setProperty("outline-color", "#f0b429", "important");
        const radio = document.querySelector('input[name="intake_pregnant"]').style;
        radio.setProperty("width", "17px", "important");
        radio.setProperty("height", "17px", "important");
    }"""
    )
    findings = " | ".join(page.evaluate(MEASURE)["findings"])
    assert re.search(r"input#id_name\S* \S*: boundary 1\.\d\d:1", findings), findings
    assert re.search(r"input#id_name\S* \S*: focus ring solid 3px 1\.\d\d:1", findings)
    assert re.search(r"input#id_intake_pregnant_0\S* \S*: 17\.0 × 17\.0 px", findings)
