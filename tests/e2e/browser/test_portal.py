"""A channel's portal admin in a real browser, on the channel's own host."""

from __future__ import annotations

import re

import pytest

from tests.billing.factories import unique
from tests.e2e.http import HttpClient

pytestmark = pytest.mark.slow


def _sign_in(page, site, code: str = "alpha") -> None:
    page.goto(site(code, "/keys/"))
    assert "/login/" in page.url
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("portal-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/keys/$"))


def test_admin_creates_a_key_sees_it_once_and_revokes_it(live_db, page, site, shoot, gateway_url):
    from playwright.sync_api import expect

    _sign_in(page, site)
    name = unique("Mobile app")
    page.get_by_label("Name").fill(name)
    page.locator("input[name=scopes][value=stamp]").check()
    page.locator("input[name=scopes][value=admin]").uncheck()
    page.get_by_role("button", name="Create key").click()

    shown = page.locator('[data-testid="new-key"]')
    expect(shown).to_be_visible()
    key = shown.inner_text().strip()
    assert re.fullmatch(r"emk_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", key)
    shoot("portal-api-key-created")
    api = HttpClient(gateway_url, "alpha.test", key)
    assert api.get("/api/v1/customers").status == 200  # the key works

    page.reload()  # a reload is a GET: the key is never shown again
    expect(page.locator('[data-testid="new-key"]')).to_have_count(0)
    assert key not in page.content()
    prefix = key.split("_")[1]
    row = page.locator(f'tr[data-key="{prefix}"]')
    expect(row.locator(".badge.active")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke the key ...?"
    row.get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.locator(".msg.success")).to_contain_text("is revoked")
    expect(page.locator(f'tr[data-key="{prefix}"] .badge.revoked')).to_be_visible()
    assert api.get("/api/v1/customers").status == 401  # and now it does not
    shoot("portal-api-keys")


def test_a_post_without_the_csrf_token_is_refused(live_db, page, site):
    from gateway.models import ApiKey

    _sign_in(page, site)
    before = ApiKey.objects.count()
    # The signed-in browser posts the form without its token (as a forged form would): refused.
    status, body = page.evaluate(
        """async () => {
            const answer = await fetch("/keys/", {method: "POST", credentials: "same-origin",
                body: new URLSearchParams({name: "no token", scopes: "read"})});
            return [answer.status, await answer.text()];
        }"""
    )
    assert status == 403
    assert "Form expired" in body or "csrf_failed" in body
    assert ApiKey.objects.count() == before


def test_portal_pages_show_the_channel(live_db, page, site, shoot, channel_keys, gateway_url):
    from playwright.sync_api import expect

    from billing import quota
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=40, reference=unique("dep"))
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])
    customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Dewi Lestari"}).json()
    api.post("/api/v1/orders", json_body={"customer": customer["id"], "quantity": 3})

    _sign_in(page, site)
    page.locator("nav.mainnav").get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator('[data-testid="balance-available"]')).to_be_visible()
    expect(page.locator("svg.chart-svg")).to_be_visible()
    shoot("portal-dashboard")
    page.locator("nav.mainnav").get_by_role("link", name="Customers", exact=True).click()
    expect(page.locator("#customers")).to_contain_text("Dewi Lestari")
    shoot("portal-customers")
    page.locator("nav.mainnav").get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator("#orders .badge.awaiting_payment").first).to_be_visible()
    shoot("portal-orders")
    page.locator("nav.mainnav").get_by_role("link", name="Stamps", exact=True).click()
    expect(page.get_by_role("heading", name="Stamp history")).to_be_visible()
    shoot("portal-stamps")
    page.locator("nav.mainnav").get_by_role("link", name="Webhooks", exact=True).click()
    page.get_by_label("Endpoint URL").fill("https://hooks.example/emeterai")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".msg.success")).to_contain_text("Endpoint added")
    page.get_by_text("Show the secret").click()
    expect(page.locator(".secret-value")).to_contain_text("whsec_")
    shoot("portal-webhook-endpoint")


def test_the_simulator_pay_page_pays_the_order(live_db, page, site, channel_keys, gateway_url, stamping_worker, shoot):
    from playwright.sync_api import expect

    from billing import quota
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])
    customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Budi"}).json()
    order = api.post("/api/v1/orders", json_body={"customer": customer["id"], "quantity": 2}).json()

    page.goto(site("alpha", f"/pay/simulator/{order['id']}"))
    expect(page.locator('[data-testid="order-status"]')).to_have_text("Awaiting Payment")
    shoot("pay-simulator-before")
    page.get_by_role("button", name=re.compile(r"^Pay Rp")).click()

    # The page answers at once and refreshes itself until the worker's webhook has credited the order.
    expect(page.locator('[data-testid="result"]')).to_have_attribute("data-state", "credited", timeout=60_000)
    expect(page.locator('[data-testid="result"]')).to_contain_text("Payment confirmed: 2 e-Meterai credited.")
    expect(page.locator('[data-testid="order-status"]')).to_have_text("Credited")
    assert api.get(f"/api/v1/orders/{order['id']}").json()["status"] == "credited"
    assert api.get(f"/api/v1/customers/{customer['id']}").json()["quota"]["available"] == 2
    shoot("pay-simulator-paid")
