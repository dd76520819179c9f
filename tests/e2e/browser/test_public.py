"""The issuer's public pages in a real browser: verification of a real stamp, the status page."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_the_public_verify_page_shows_a_stamps_status(live_db, page, site, shoot):
    from playwright.sync_api import expect

    from billing import quota
    from issuer.services import stamp_document
    from tenants.models import Channel
    from tests.billing.factories import funded_wallet, unique
    from tests.fixtures.pdfs import factory

    # A stamp as the stamping service makes it: a held unit, committed in the issuer's recording
    # transaction, so the shared database stays reconciled (one used serial per committed unit).
    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    hold = unique("hold")
    quota.hold_quota(channel_id=alpha.pk, customer_id=customer_id, hold_id=hold)
    stamped = stamp_document(
        channel=alpha, data=factory.text_pdf(), page=1, box=(420, 60, 520, 160), job_ref=hold,
        on_recorded=lambda _row: quota.commit_hold(hold_id=hold),
    )  # fmt: skip

    page.goto(site(None, "/verify"))
    page.get_by_label(re.compile("Serial number")).fill(stamped.serial.lower())
    page.get_by_role("button", name="Check serial").click()
    page.wait_for_url(re.compile(rf"/v/{stamped.serial}$"))
    expect(page.locator(".verdict.ok")).to_contain_text("Valid e-Meterai")
    expect(page.locator(".facts")).to_contain_text("Alpha Channel")
    expect(page.locator(".facts")).to_contain_text("Used")
    shoot("verify-serial-valid")

    page.goto(site(None, "/v/2C5NV74I6D0HJ1EZ000DU8"))
    expect(page.locator(".verdict.bad")).to_be_visible()
    shoot("verify-serial-unknown")


def test_the_status_page_works_without_javascript(browser, site, shots):
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False, viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        page.goto(site(None, "/status"))
        expect(page.get_by_role("heading", name="Components")).to_be_visible()
        expect(page.locator("svg.chart-svg")).to_be_visible()
        expect(page.locator("#status-live")).not_to_have_attribute("data-live-on", "true")
        page.screenshot(path=str(shots / "status-no-js.png"), full_page=True)
    finally:
        context.close()
