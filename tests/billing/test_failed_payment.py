"""A failed payment closes the order (status and reason say so) and gives its reserved stock back."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from billing.retail import services as retail
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
def order(alpha):
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Bayu")
        webhooks.create_webhook_endpoint(url="http://127.0.0.1:9/hook", events=["order.payment_failed"])
        return retail.create_order(channel=alpha, customer=customer, quantity=3)


def test_a_failed_payment_moves_the_order_out_of_awaiting_payment(client_for, alpha, order):
    stock = ledger.channel_balance(channel_id=alpha.pk)

    answer = webhook(client_for, order, succeeded=False, payment_ref=unique("pay"))
    shown = client_for("alpha").get(f"/api/v1/orders/{order.pk}").json()

    assert answer.status_code == 200
    assert answer.json()["order_status"] == "payment_failed"
    assert shown["status"] == "payment_failed"
    assert shown["status_reason"].startswith("The payment failed;")
    assert "payment" not in shown  # no pay_url for a closed order
    after = ledger.channel_balance(channel_id=alpha.pk)
    assert (after.available - stock.available, stock.reserved - after.reserved) == (3, 3)  # stock given back
    with schema_context("alpha"):
        [event] = WebhookDelivery.objects.filter(event_type="order.payment_failed")
    assert event.payload["order"]["status"] == "payment_failed"


def test_a_payment_that_succeeds_after_a_failure_is_still_credited(client_for, alpha, order):
    webhook(client_for, order, succeeded=False, payment_ref=unique("pay"))

    paid = webhook(client_for, order, payment_ref=unique("pay"))

    assert paid.json()["order_status"] == "credited"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=order.customer_id)["available"] == 3
