"""A purchase over real HTTP: order via the API, the simulator's pay page queues a signed webhook
that a worker delivers (a real HTTP request back to the gateway), and the wallet is credited."""

from __future__ import annotations

import time

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import simulator
from tests.billing.factories import unique
from tests.e2e.http import HttpClient

pytestmark = pytest.mark.slow


def settled(browser: HttpClient, *, order_id: str, succeeded: bool) -> str:
    """Follow the self-refreshing waiting page until the payment is settled; its final text."""
    path = f"/pay/simulator/{order_id}/payments/{simulator.payment_ref(order_id=order_id, succeeded=succeeded)}"
    deadline = time.monotonic() + 60
    while 'data-state="waiting"' in (text := browser.get(path, headers={"Accept": "text/html"}).text):
        assert time.monotonic() < deadline, "the payment was never confirmed"
        time.sleep(0.2)
    return text


def test_order_paid_on_the_simulator_page_credits_the_wallet(live_db, gateway_url, stamping_worker, channel_keys):
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])
    customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Ayu"}).json()
    order = api.post("/api/v1/orders", json_body={"customer": customer["id"], "quantity": 2})
    assert order.status == 201, order.text
    order_id = order.json()["id"]

    browser = HttpClient(gateway_url, "alpha.test")
    page = browser.csrf_form(f"/pay/simulator/{order_id}", {"action": "pay"})
    assert page.status == 200, page.text
    assert "Payment sent, waiting for confirmation." in page.text
    assert 'data-state="credited"' in settled(browser, order_id=order_id, succeeded=True)

    assert api.get(f"/api/v1/orders/{order_id}").json()["status"] == "credited"
    fetched = api.get(f"/api/v1/customers/{customer['id']}").json()
    assert fetched["quota"] == {"available": 2, "held": 0, "used": 0}
    with schema_context("alpha"):
        from billing.retail.models import Payment

        assert Payment.objects.filter(order_id=order_id, status="succeeded").count() == 1


def test_a_failed_payment_closes_the_order(live_db, gateway_url, stamping_worker, channel_keys):
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=1, reference=unique("dep"))
    api = HttpClient(gateway_url, "alpha.test", channel_keys["alpha"])
    customer = api.post("/api/v1/customers", json_body={"external_ref": unique("c"), "name": "Bayu"}).json()
    order_id = api.post("/api/v1/orders", json_body={"customer": customer["id"], "quantity": 1}).json()["id"]
    browser = HttpClient(gateway_url, "alpha.test")
    browser.csrf_form(f"/pay/simulator/{order_id}", {"action": "fail"})
    assert "The payment failed." in settled(browser, order_id=order_id, succeeded=False)
    # (#15: it stayed awaiting_payment with an empty status_reason)
    shown = api.get(f"/api/v1/orders/{order_id}").json()
    assert shown["status"] == "payment_failed" and shown["status_reason"]
