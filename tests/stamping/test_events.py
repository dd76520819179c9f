"""Channels hear about their work: stamp.completed / stamp.failed / order.paid / order.credited / stock.low
are written to the webhook outbox in the same transaction as the change they announce."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import PaymentEvent
from billing.retail import services as retail
from outbox.models import WebhookDelivery
from outbox.webhooks import create_webhook_endpoint
from stamping import services
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    with schema_context("alpha"):
        create_webhook_endpoint(url="https://shop.example/hooks", events=["*"])
    return channels["alpha"]


def events() -> list[str]:
    with schema_context("alpha"):
        return list(WebhookDelivery.objects.order_by("pk").values_list("event_type", flat=True))


def make_customer(alpha, units):
    from tenants.customers.models import Customer

    customer_id = funded_wallet(channel_id=alpha.pk, units=units)
    with schema_context("alpha"):
        return Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Evt")


def test_stamp_completed_and_failed_are_announced(alpha):
    customer = make_customer(alpha, 2)
    with schema_context("alpha"):
        ok = services.request_stamp(
            channel=alpha,
            customer_id=customer.pk,
            request=services.StampRequest(data=text_pdf(), page=1, box=(40, 40, 140, 140)),
        )
        bad = services.request_stamp(
            channel=alpha,
            customer_id=customer.pk,
            request=services.StampRequest(data=text_pdf(), page=1, box=(40, 40, 140, 140)),
        )
        StampJob.objects.filter(pk=bad.pk).update(profile="gone")
        services.run_stamp_job(channel=alpha, job_id=ok.pk)
        services.run_stamp_job(channel=alpha, job_id=bad.pk)
        payloads = {d.event_type: d.payload for d in WebhookDelivery.objects.all()}
    assert events() == ["stamp.completed", "stamp.failed"]
    assert payloads["stamp.completed"]["stamp"]["id"] == ok.pk
    assert len(payloads["stamp.completed"]["stamp"]["serial"]) == 22
    assert payloads["stamp.failed"]["stamp"]["unit"] == "released"


def test_order_paid_and_credited_are_announced_once(alpha):
    quota.allocate_stock(channel_id=alpha.pk, units=500, reference=unique("dep"))
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Buyer")
        order = retail.create_order(channel=alpha, customer=customer, quantity=2)
        event = PaymentEvent(
            provider_ref=unique("p"), order_id=order.pk, succeeded=True, amount_rupiah=order.total_rupiah
        )
        retail.apply_payment_event(channel=alpha, provider_name="simulator", event=event)
        retail.apply_payment_event(channel=alpha, provider_name="simulator", event=event)  # duplicate delivery
    assert [e for e in events() if e.startswith("order.")] == ["order.paid", "order.credited"]


def test_stock_low_is_announced_when_an_order_crosses_the_threshold(alpha):
    from billing.ledger import services as ledger
    from tenants.customers.models import Customer

    available = ledger.channel_balance(channel_id=alpha.pk).available
    threshold = available + 5  # pretend the threshold sits just above what an allocation will give
    alpha.low_stock_threshold = threshold
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))  # available = threshold + 5
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Stock")
        retail.create_order(channel=alpha, customer=customer, quantity=4)  # threshold + 1: not low yet
        assert "stock.low" not in events()
        retail.create_order(channel=alpha, customer=customer, quantity=2)  # threshold - 1: crosses
        retail.create_order(channel=alpha, customer=customer, quantity=1)  # already low: no repeat
    assert events().count("stock.low") == 1
