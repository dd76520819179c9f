"""Retail purchase: order -> signed webhook -> wallet credited; duplicates, reordering, late payment, refunds."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from billing.providers import simulator
from billing.retail import services as retail
from billing.retail.models import Order, Payment
from tenants.customers.models import Customer
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=50, reference=unique("dep"))
    return channel


@pytest.fixture
def customer(alpha):
    with schema_context("alpha"):
        yield Customer.objects.create(external_ref=unique("c"), name="Siti")


def webhook(client_for, order: Order, *, succeeded=True, payment_ref=None, amount=None, signature=None):
    body = simulator.event_body(
        order_id=order.pk,
        amount_rupiah=order.total_rupiah if amount is None else amount,
        succeeded=succeeded,
        payment_ref=payment_ref,
    )
    return client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook",
        data=body,
        content_type="application/json",
        HTTP_SIMULATOR_SIGNATURE=signature or simulator.sign(body),
    )


def wallet(alpha, customer):
    return quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)


def order_for(alpha, customer, quantity=3) -> Order:
    with schema_context("alpha"):
        return retail.create_order(channel=alpha, customer=customer, quantity=quantity)


def test_an_order_reserves_stock_and_is_priced_in_rupiah(alpha, customer):
    before = ledger.channel_balance(channel_id=alpha.pk)
    order = order_for(alpha, customer, quantity=3)
    assert order.total_rupiah == 3 * (10_000 + alpha.service_fee_rupiah)
    after = ledger.channel_balance(channel_id=alpha.pk)
    assert (before.available - after.available, after.reserved - before.reserved) == (3, 3)
    assert wallet(alpha, customer)["available"] == 0


def test_a_paid_webhook_credits_the_wallet_once_however_often_it_arrives(client_for, alpha, customer):
    order = order_for(alpha, customer)
    ref = unique("pay")
    first = webhook(client_for, order, payment_ref=ref)
    assert first.status_code == 200, first.content
    assert first.json()["order_status"] == "credited"
    for _ in range(3):
        again = webhook(client_for, order, payment_ref=ref)
        assert again.status_code == 200 and again.json()["replayed"] is True
    assert wallet(alpha, customer) == {"available": 3, "held": 0, "used": 0}
    with schema_context("alpha"):
        assert Payment.objects.filter(order=order).count() == 1


def test_a_failed_event_after_success_changes_nothing(client_for, alpha, customer):
    order = order_for(alpha, customer)
    webhook(client_for, order, payment_ref=unique("pay"))
    late_failure = webhook(client_for, order, succeeded=False, payment_ref=unique("pay"))
    assert late_failure.status_code == 200
    assert wallet(alpha, customer)["available"] == 3
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == "credited"


def test_a_second_payment_for_the_same_order_is_refunded_not_credited(client_for, alpha, customer):
    order = order_for(alpha, customer)
    webhook(client_for, order, payment_ref=unique("pay"))
    second = webhook(client_for, order, payment_ref=unique("pay"))
    assert "refunded" in second.json()["note"]
    assert wallet(alpha, customer)["available"] == 3
    with schema_context("alpha"):
        statuses = sorted(Payment.objects.filter(order=order).values_list("status", flat=True))
        assert statuses == ["refund_pending", "succeeded"]  # owed, and sent after commit ...
        assert retail.send_pending_refunds(channel=alpha) == 1
        assert retail.send_pending_refunds(channel=alpha) == 0  # ... exactly once
        assert sorted(Payment.objects.filter(order=order).values_list("status", flat=True)) == ["refunded", "succeeded"]


def test_a_wrong_amount_is_refunded(client_for, alpha, customer):
    order = order_for(alpha, customer)
    response = webhook(client_for, order, payment_ref=unique("pay"), amount=order.total_rupiah - 1)
    assert "amount" in response.json()["note"]
    assert wallet(alpha, customer)["available"] == 0
    with schema_context("alpha"):
        assert Order.objects.get(pk=order.pk).status == "awaiting_payment"


def test_a_bad_signature_is_refused_and_changes_nothing(client_for, alpha, customer):
    order = order_for(alpha, customer)
    response = webhook(client_for, order, signature="t=1,v1=deadbeef")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert wallet(alpha, customer)["available"] == 0
    with schema_context("alpha"):
        assert Payment.objects.count() == 0


def test_a_stale_signature_is_refused(client_for, alpha, customer):
    order = order_for(alpha, customer)
    body = simulator.event_body(order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=True)
    old = simulator.sign(body, timestamp=int(timezone.now().timestamp()) - 3600)
    response = client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook", data=body, content_type="application/json", HTTP_SIMULATOR_SIGNATURE=old
    )
    assert response.status_code == 401


def _expire(order: Order) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = ANY(%s)",
            [order.reservation_ids],
        )
    with schema_context("alpha"):
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_expiry_gives_reserved_stock_back(alpha, customer):
    order = order_for(alpha, customer)
    reserved = ledger.channel_balance(channel_id=alpha.pk)
    _expire(order)
    with schema_context("alpha"):
        assert retail.expire_orders(channel=alpha) == 1
        assert retail.expire_orders(channel=alpha) == 0
        assert Order.objects.get(pk=order.pk).status == "expired"
    after = ledger.channel_balance(channel_id=alpha.pk)
    assert after.available - reserved.available == 3


def test_a_payment_after_expiry_is_credited_from_stock_when_there_is_some(client_for, alpha, customer):
    order = order_for(alpha, customer)
    _expire(order)
    with schema_context("alpha"):
        retail.expire_orders(channel=alpha)
    response = webhook(client_for, order, payment_ref=unique("pay"))
    assert response.json()["order_status"] == "credited"
    assert wallet(alpha, customer)["available"] == 3


def test_a_payment_after_expiry_with_no_stock_left_is_refunded_and_says_so(client_for, channels):
    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=2, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Late Payer")
    order = order_for(alpha, customer, quantity=2)
    _expire(order)
    with schema_context("alpha"):
        retail.expire_orders(channel=alpha)
        # someone else buys everything that is left
        drain = Customer.objects.create(external_ref=unique("c"), name="Drain")
        left = ledger.channel_balance(channel_id=alpha.pk).available
        retail.create_order(channel=alpha, customer=drain, quantity=left)
    response = webhook(client_for, order, payment_ref=unique("pay"))
    assert response.json()["order_status"] == "refunded"
    with schema_context("alpha"):
        refreshed = Order.objects.get(pk=order.pk)
        assert "refunded" in refreshed.status_reason
        assert Payment.objects.get(order=order).status == "refund_pending"
        retail.send_pending_refunds(channel=alpha)
        assert Payment.objects.get(order=order).status == "refunded"
    assert wallet(alpha, customer)["available"] == 0


def test_a_paid_but_uncredited_order_is_credited_by_the_sweeper(alpha, customer):
    order = order_for(alpha, customer)
    with schema_context("alpha"):
        Order.objects.filter(pk=order.pk).update(status="paid", paid_at=timezone.now())  # a crash left it here
        assert retail.credit_paid_orders(channel=alpha) == 1
        assert retail.credit_paid_orders(channel=alpha) == 0
        assert Order.objects.get(pk=order.pk).status == "credited"
    assert wallet(alpha, customer)["available"] == 3


def test_refund_returns_unused_units_to_stock_less_the_fee(client_for, alpha, customer):
    order = order_for(alpha, customer, quantity=3)
    webhook(client_for, order, payment_ref=unique("pay"))
    stock = ledger.channel_balance(channel_id=alpha.pk).available
    response = client_for("alpha").post(
        f"/api/v1/orders/{order.pk}/refunds",
        data={"units": 2},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["units"] == 2
    assert body["amount_rupiah"] == 2 * (10_000 + alpha.service_fee_rupiah) - alpha.refund_fee_rupiah
    assert body["status"] == "pending"  # units are back now; the money leaves after commit
    with schema_context("alpha"):
        from billing.retail.models import Refund

        assert retail.send_pending_refunds(channel=alpha) == 1
        assert Refund.objects.get(pk=body["id"]).status == "succeeded"
    assert wallet(alpha, customer)["available"] == 1
    assert ledger.channel_balance(channel_id=alpha.pk).available == stock + 2
    too_many = client_for("alpha").post(
        f"/api/v1/orders/{order.pk}/refunds",
        data={"units": 2},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="refund-2",
    )
    assert too_many.status_code == 409
    assert too_many.json()["code"] == "refund_not_allowed"
    assert wallet(alpha, customer)["available"] == 1


def test_refund_outside_the_window_is_refused(client_for, alpha, customer):
    order = order_for(alpha, customer, quantity=1)
    webhook(client_for, order, payment_ref=unique("pay"))
    with schema_context("alpha"):
        Order.objects.filter(pk=order.pk).update(credited_at=timezone.now() - timedelta(days=46))
    response = client_for("alpha").post(
        f"/api/v1/orders/{order.pk}/refunds",
        data={"units": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="refund-late",
    )
    assert response.status_code == 409
    assert "45 days" in response.json()["detail"]
    assert wallet(alpha, customer)["available"] == 1


def test_order_api_roundtrip(client_for, alpha, customer):
    created = client_for("alpha").post(
        "/api/v1/orders", data=json.dumps({"customer": customer.pk, "quantity": 2}), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "awaiting_payment"
    assert body["payment"]["pay_url"].endswith(f"/pay/simulator/{body['id']}")
    fetched = client_for("alpha").get(f"/api/v1/orders/{body['id']}")
    assert fetched.json()["total_rupiah"] == body["total_rupiah"]
    other_channel = client_for("beta").get(f"/api/v1/orders/{body['id']}")
    assert other_channel.status_code == 404


def test_an_order_beyond_stock_is_refused_clearly(client_for, alpha, customer):
    available = ledger.channel_balance(channel_id=alpha.pk).available
    if available >= 1000:
        pytest.skip("alpha has more stock than one order may take")
    response = client_for("alpha").post(
        "/api/v1/orders", data={"customer": customer.pk, "quantity": available + 1}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert ledger.channel_balance(channel_id=alpha.pk).available == available


def test_no_money_leaves_before_the_refund_is_committed(client_for, alpha, customer, monkeypatch):
    """A refund whose transaction dies sends nothing; the provider is only called for committed refunds."""
    from django.db import transaction

    from billing.providers.simulator import SimulatorProvider
    from billing.retail.models import Refund

    calls = []
    real_refund = SimulatorProvider.refund
    monkeypatch.setattr(SimulatorProvider, "refund", lambda self, **kw: calls.append(kw) or real_refund(self, **kw))
    order = order_for(alpha, customer, quantity=2)
    webhook(client_for, order, payment_ref=unique("pay"))
    with schema_context("alpha"):
        with pytest.raises(RuntimeError), transaction.atomic():
            retail.refund_order(channel=alpha, order_id=order.pk, customer=customer, units=1, request_key="k1")
            raise RuntimeError("the process dies before the commit")
        assert Refund.objects.filter(order=order).count() == 0
        assert retail.send_pending_refunds(channel=alpha) == 0
    assert calls == []
    assert wallet(alpha, customer)["available"] == 2


def test_a_refund_needs_an_idempotency_key_and_its_retry_refunds_nothing_twice(client_for, alpha, customer):
    """Without a key, a retry after a lost answer could not be told from a second refund: refused. With
    one, the retry (same key, same body) gets the first answer and nothing moves again."""
    order = order_for(alpha, customer, quantity=3)
    webhook(client_for, order, payment_ref=unique("pay"))
    api = client_for("alpha")
    path, body = f"/api/v1/orders/{order.pk}/refunds", json.dumps({"units": 1})

    keyless = api.post(path, body, content_type="application/json")
    assert keyless.status_code == 400 and keyless.json()["code"] == "idempotency_key_required"
    assert wallet(alpha, customer)["available"] == 3  # nothing refunded

    first = api.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="refund-once")
    retry = api.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="refund-once")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert wallet(alpha, customer)["available"] == 2  # one unit refunded, once
