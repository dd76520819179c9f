"""A refund can be followed: the schema lists the status it is sent with, and its outcome is a
``refund.succeeded`` / ``refund.failed`` webhook recorded with the status change."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import ProviderRefund
from billing.providers.simulator import SimulatorProvider
from billing.retail import services as retail
from billing.retail.models import Refund
from outbox import webhooks
from outbox.models import WebhookDelivery
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.billing.test_retail import webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=20, reference=unique("dep"))
    return channel


@pytest.fixture
def credited_order(alpha, client_for):
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Siti")
        order = retail.create_order(channel=alpha, customer=customer, quantity=3)
        webhooks.create_webhook_endpoint(url="http://127.0.0.1:9/hook", events=["refund.succeeded", "refund.failed"])
    webhook(client_for, order, payment_ref=unique("pay"))
    return order


def _refund(client_for, order, key="ev-1") -> dict:
    response = client_for("alpha").post(
        f"/api/v1/orders/{order.pk}/refunds", {"units": 2}, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 201, response.content
    return response.json()


def _refund_events() -> list[tuple[str, dict]]:
    with schema_context("alpha"):
        return [
            (d.event_type, d.payload)
            for d in WebhookDelivery.objects.filter(event_type__startswith="refund.").order_by("pk")
        ]


def test_the_schema_lists_the_status_a_refund_is_sent_with(client_for, credited_order):
    schema = client_for("alpha").get("/api/v1/schema", {"format": "json"}).json()
    enum = schema["components"]["schemas"]["RefundStatusEnum"]["enum"]

    sent = _refund(client_for, credited_order)

    assert enum == ["pending", "succeeded", "failed"]
    assert sent["status"] == "pending"


def test_a_refund_sent_is_announced_as_refund_succeeded(client_for, credited_order, alpha):
    sent = _refund(client_for, credited_order)
    assert _refund_events() == []  # pending: nothing to announce yet

    with schema_context("alpha"):
        retail.send_pending_refunds(channel=alpha)
        retail.send_pending_refunds(channel=alpha)  # a second round sends and announces nothing again

    [(event_type, payload)] = _refund_events()
    assert event_type == "refund.succeeded"
    assert payload["refund"] == {**sent, "status": "succeeded", "customer": credited_order.customer_id}
    assert client_for("alpha").get(f"/api/v1/refunds/{sent['id']}").json()["status"] == "succeeded"


def test_a_refund_the_provider_refuses_is_failed_and_announced(client_for, credited_order, alpha, monkeypatch):
    monkeypatch.setattr(
        SimulatorProvider, "refund", lambda self, **kw: ProviderRefund(reference="simrfd_no", succeeded=False)
    )
    sent = _refund(client_for, credited_order)

    with schema_context("alpha"):
        retail.send_pending_refunds(channel=alpha)

    assert [e for e, _ in _refund_events()] == ["refund.failed"]
    assert _refund_events()[0][1]["refund"]["id"] == sent["id"]
    assert client_for("alpha").get(f"/api/v1/refunds/{sent['id']}").json()["status"] == "failed"


def test_a_refused_refund_gives_the_units_back_to_the_wallet(client_for, credited_order, alpha, monkeypatch):
    """No money went back, so the units do: the customer keeps what they paid for, may ask again, and
    the channel's figures count no refund."""
    from billing.reconciliation import reconcile

    monkeypatch.setattr(
        SimulatorProvider, "refund", lambda self, **kw: ProviderRefund(reference="simrfd_no", succeeded=False)
    )
    customer = credited_order.customer_id
    before = client_for("alpha").get("/api/v1/balance").json()
    _refund(client_for, credited_order)
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer)["available"] == 1

    with schema_context("alpha"):
        retail.send_pending_refunds(channel=alpha)
        retail.send_pending_refunds(channel=alpha)  # a second round gives nothing back twice
        credited_order.refresh_from_db()

    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer)["available"] == 3
    assert credited_order.refunded_units == 0
    after = client_for("alpha").get("/api/v1/balance").json()
    assert (after["refunded"], after["in_wallets"]) == (before["refunded"], before["in_wallets"])
    report = reconcile(store=False)
    assert report["ok"], report


def test_the_event_and_the_status_change_commit_together(client_for, credited_order, alpha, monkeypatch):
    sent = _refund(client_for, credited_order)

    def broken(**kwargs):
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(webhooks, "enqueue_event", broken)
    with schema_context("alpha"), pytest.raises(RuntimeError):
        retail.send_pending_refunds(channel=alpha)

    with schema_context("alpha"):
        assert Refund.objects.get(pk=sent["id"]).status == "pending"  # sent again next round, then announced
    assert _refund_events() == []
