"""Issuer staff in a real browser: sign in with a password and a one-time code, one person records a
deposit and another confirms it, watch the stock change; a new staff member sets up the second factor."""

from __future__ import annotations

import re

import pytest

from tests.billing.factories import unique

pytestmark = pytest.mark.slow


def _staff(password: str, groups=("Stock recorders", "Stock approvers"), device: bool = True) -> str:
    from tests.staff_helpers import make_staff

    username = unique("staff")
    make_staff(username, password=password, groups=groups, device=device)
    return username


def _code(username: str, *, confirmed: bool = True) -> str:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.staff_helpers import totp_code

    return totp_code(TOTPDevice.objects.get(user__username=username, confirmed=confirmed))


def _sign_in(page, site, username: str, password: str) -> None:
    page.goto(site(None, "/backoffice/"))
    assert "/backoffice/login/" in page.url  # sent to the login page first
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/backoffice/login/code/"))  # then the one-time code
    page.get_by_label("Code", exact=True).fill(_code(username))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/backoffice/$"))


def _sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/backoffice/login/"))


def _available(page, code: str) -> int:
    return int(
        page.locator(f'[data-testid="available-{code}"]')
        .first.inner_text()
        .split()[0]
        .replace(".", "")
        .replace(",", "")
    )


def test_one_person_records_a_deposit_another_confirms_it_and_the_stock_goes_up(live_db, page, site, shoot):
    from playwright.sync_api import expect

    username = _staff("staff-pass-123", groups=("Stock recorders",))
    checker = _staff("checker-pass-123", groups=("Stock approvers",))
    _sign_in(page, site, username, "staff-pass-123")
    expect(page.get_by_role("heading", name="Channels at a glance")).to_be_visible()
    expect(page.locator("svg.chart-svg")).to_have_count(2)
    before = _available(page, "alpha")
    shoot("backoffice-overview")

    page.locator("nav.mainnav").get_by_role("link", name="Deposits", exact=True).click()
    reference = unique("INV")
    page.get_by_label("Channel").select_option(label="Alpha Channel (alpha)")
    page.get_by_label("Units").fill("250")
    page.get_by_label("Billing reference").fill(reference)
    page.get_by_role("button", name="Record deposit").click()
    expect(page.locator(".msg.success")).to_contain_text(f"Deposit {reference} recorded")
    row = page.locator(f'tr[data-reference="{reference}"]')
    expect(row.locator(".badge")).to_have_text("Pending")
    assert _available(page, "alpha") == before  # recorded, not yet allocated
    expect(row.get_by_role("button", name=re.compile("Confirm"))).to_have_count(0)  # not by the maker
    shoot("backoffice-deposits")
    _sign_out(page)

    _sign_in(page, site, checker, "checker-pass-123")
    page.locator("nav.mainnav").get_by_role("link", name="Deposits", exact=True).click()
    row = page.locator(f'tr[data-reference="{reference}"]')
    row.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.locator(".msg.success")).to_contain_text("250 units allocated to Alpha Channel")
    expect(page.locator(f'tr[data-reference="{reference}"] .badge')).to_have_text("Confirmed")
    assert _available(page, "alpha") == before + 250

    page.locator("nav.mainnav").get_by_role("link", name="Overview", exact=True).click()
    assert _available(page, "alpha") == before + 250


def test_staff_runs_reconciliation_reads_settlement_and_publishes_an_incident(live_db, page, site, shoot):
    from playwright.sync_api import expect

    username = _staff("staff-pass-123")
    _sign_in(page, site, username, "staff-pass-123")

    page.locator("nav.mainnav").get_by_role("link", name="Reconciliation", exact=True).click()
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".msg")).to_contain_text("Reconciliation")
    expect(page.locator(".check-list > li")).to_have_count(8)  # one per check (violations nest inside)
    shoot("backoffice-reconciliation")

    page.locator("nav.mainnav").get_by_role("link", name="Settlement", exact=True).click()
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#settlement tbody tr[data-channel=alpha]")).to_be_visible()
    expect(page.locator(".callout")).to_contain_text("units used by completed stamps")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("settlement_")
    shoot("backoffice-settlement")

    title = unique("Slow stamping")
    page.locator("nav.mainnav").get_by_role("link", name="Incidents", exact=True).click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("What users should know").fill("Stamps take a few minutes longer than usual. Nothing is lost.")
    page.get_by_role("button", name="Publish on the status page").click()
    expect(page.locator(".incident", has_text=title)).to_be_visible()
    shoot("backoffice-incidents")

    page.goto(site(None, "/status"))
    expect(page.locator(".incident", has_text=title)).to_be_visible()
    expect(page.locator(".status-banner")).to_be_visible()
    expect(page.locator("#status-live")).to_have_attribute("data-live-on", "true")  # the live refresh started
    shoot("status-page")

    page.goto(site(None, "/backoffice/incidents/"))
    page.locator(".incident", has_text=title).get_by_role("button", name="Mark resolved").click()
    expect(page.locator(".msg.success")).to_contain_text("marked resolved")


# The page's own width, and every control of the form inside its card (at the suite's 1280 px).
_OVERFLOW = """() => {
  const card = document.querySelector('aside.card').getBoundingClientRect();
  const out = [...document.querySelectorAll('aside.card form input, aside.card form select,'
                                            + ' aside.card form textarea, aside.card form button')]
    .filter(el => el.type !== 'hidden')
    .map(el => [el.name || el.textContent.trim(), el.getBoundingClientRect()])
    .filter(([, r]) => r.left < card.left - 0.5 || r.right > card.right + 0.5)
    .map(([name]) => name);
  return {out, page: document.documentElement.scrollWidth, viewport: window.innerWidth};
}"""


def test_the_incidents_form_fits_its_card_at_1280_px(live_db, page, site, shoot):
    username = _staff("staff-pass-123")
    _sign_in(page, site, username, "staff-pass-123")

    page.goto(site(None, "/backoffice/incidents/"))
    assert page.viewport_size["width"] == 1280
    fit = page.evaluate(_OVERFLOW)
    shoot("backoffice-incidents-1280")

    assert fit["out"] == []  # no field sticks out of the "New note" card
    assert fit["page"] <= fit["viewport"]  # and the page does not scroll sideways


def test_pages_load_without_a_missing_file(live_db, page, site):
    """No 404 in the browser's console: the favicon every browser asks for is served."""
    missing: list[str] = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))

    icons = []
    for url in (site(None, "/"), site(None, "/status"), site(None, "/api/v1/docs"), site("alpha", "/login/")):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        # headless Chromium does not fetch the icon by itself: ask for the one the page names, as a browser does
        icons.append(page.evaluate("() => fetch(document.querySelector('link[rel~=icon]').href).then(r => r.status)"))

    assert icons == [200, 200, 200, 200]
    assert missing == []


def test_a_new_staff_member_sets_up_the_second_factor(live_db, page, site, shoot):
    from playwright.sync_api import expect

    username = _staff("staff-pass-123", device=False)
    page.goto(site(None, "/backoffice/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("staff-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/backoffice/login/enrol/"))
    expect(page.locator(".otp-qr svg")).to_be_visible()
    expect(page.get_by_test_id("otp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{32}$"))
    shoot("backoffice-otp-enrol")
    page.get_by_label("Code", exact=True).fill(_code(username, confirmed=False))
    page.get_by_role("button", name="Confirm and continue").click()
    page.wait_for_url(re.compile(r"/backoffice/$"))
    expect(page.get_by_role("heading", name="Channels at a glance")).to_be_visible()
    page.locator("nav.mainnav").get_by_role("link", name="Audit", exact=True).click()
    expect(page.locator("#audit tr[data-action='staff.otp_enrolled']").first).to_contain_text(username)
    shoot("backoffice-audit")


def test_staff_pause_purchases_in_the_browser_and_the_status_page_says_so(live_db, page, site, shoot):
    """The brownout page's forms work under the Content-Security-Policy (nothing inline), the pause is
    on the public status page at once, and resuming lifts it."""
    from playwright.sync_api import expect

    from stamping.brownout.models import Brownout

    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    username = _staff("staff-pass-123")
    _sign_in(page, site, username, "staff-pass-123")
    reason = f"Deadline surge {unique('r')}: finishing paid work first."
    try:
        page.goto(site(None, "/backoffice/brownout/"))
        page.get_by_label("Pause").select_option("purchases")
        page.get_by_label("Channel").select_option("alpha")
        page.get_by_label("Reason").fill(reason)
        page.get_by_role("button", name="Pause", exact=True).click()
        expect(page.locator(".msg.success")).to_contain_text("paused for alpha")
        expect(page.locator("table", has_text=reason)).to_be_visible()
        shoot("backoffice-brownout")

        page.goto(site(None, "/status"))
        expect(page.locator(".brownout", has_text=reason)).to_be_visible()

        page.goto(site(None, "/backoffice/brownout/"))
        page.locator("tr", has_text=reason).get_by_role("button", name="Resume").click()
        expect(page.locator(".msg.success")).to_contain_text("resumed for alpha")
        assert seen == []
    finally:
        from django.utils import timezone

        # committed data: a pause a failed run left open would refuse the other live tests' purchases
        Brownout.objects.filter(reason=reason, ended_at__isnull=True).update(ended_at=timezone.now(), ended_by="test")
