"""The Content-Security-Policy allows nothing inline, and the pages still work under it in a real
browser: no violation is reported, the revoke confirmation (once an inline onsubmit) still asks and
honours the answer, the live script still runs."""

from __future__ import annotations

import re

import pytest

from tests.billing.factories import unique
from tests.e2e.browser.test_portal import _sign_in

pytestmark = pytest.mark.slow


@pytest.fixture
def violations(page) -> list[str]:
    """What the browser says it refused under the Content-Security-Policy."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def test_public_pages_run_under_the_policy(live_db, page, site, violations):
    from playwright.sync_api import expect

    for path in ("/", "/status", "/verify", "/api/v1/docs"):
        response = page.goto(site(None, path))
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".method").first).to_have_css("font-weight", "700")  # api-docs.css was applied
    page.goto(site(None, "/status"))
    expect(page.locator("[data-live-on=true]").first).to_be_attached()  # live.js ran
    assert violations == []


def test_portal_pages_run_under_the_policy_and_revoking_still_asks(live_db, page, site, violations):
    from playwright.sync_api import expect

    from gateway.apikeys import issue_api_key
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    name = unique("Kept key")
    prefix = issue_api_key(channel=alpha, name=name, scopes=("read",)).plaintext.split("_")[1]
    _sign_in(page, site)
    row = page.locator(f'tr[data-key="{prefix}"]')
    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.wait_for_timeout(300)  # a submitted form would navigate; a dismissed one stays
    assert asked == [f"Revoke the key “{name}”? Requests with it are refused at once."]
    expect(row.locator(".badge.active")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.locator(f'tr[data-key="{prefix}"] .badge.revoked')).to_be_visible()

    from billing import quota

    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    page.goto(site("alpha", "/"))
    expect(page.locator("svg.stockbar rect.bar").first).to_be_attached()
    assert violations == []
