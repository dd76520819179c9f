"""``PAYMENT_PROVIDERS``: a provider that is not enabled does not exist. Its webhook and pages answer
404 ``unknown_provider`` and never credit; production refuses to start with the simulator or with an
enabled provider lacking its secret (the issue's free quota: an empty webhook key, an anonymous pay page)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import simulator
from billing.retail import services as retail
from billing.retail.models import Order, Payment
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.gateway.test_production_settings import documented_environment

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def order(channels):
    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Wati")
        return retail.create_order(channel=alpha, customer=customer, quantity=5, provider="simulator")


def wallet(channels, order):
    return quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=order.customer_id)


def assert_unknown_provider(response):
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_provider"
    assert response.json()["request_id"]


def test_a_webhook_signed_with_an_empty_key_credits_nothing_where_the_simulator_is_off(
    client_for, channels, order, settings
):
    settings.PAYMENT_PROVIDERS = ["midtrans"]
    settings.PAYMENT_SIMULATOR_SECRET = ""  # production's old default
    body = simulator.event_body(order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=True)

    response = client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook",
        data=body,
        content_type="application/json",
        HTTP_SIMULATOR_SIGNATURE=simulator.sign(body),
    )

    assert_unknown_provider(response)
    assert wallet(channels, order)["available"] == 0
    with schema_context("alpha"):
        assert Payment.objects.filter(order=order).count() == 0
        assert Order.objects.get(pk=order.pk).status == "awaiting_payment"


def test_the_same_webhook_credits_where_the_simulator_is_on(client_for, channels, order, settings):
    """(the control: the refusal above is the setting's doing, not a broken signature)"""
    settings.PAYMENT_PROVIDERS = ["simulator"]
    body = simulator.event_body(order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=True)
    response = client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook",
        data=body,
        content_type="application/json",
        HTTP_SIMULATOR_SIGNATURE=simulator.sign(body),
    )
    assert response.status_code == 200 and response.json()["order_status"] == "credited"
    assert wallet(channels, order)["available"] == 5


def test_the_pay_page_does_not_exist_where_the_simulator_is_off(
    client_for, channels, order, settings, django_capture_on_commit_callbacks
):
    settings.PAYMENT_PROVIDERS = ["xendit"]
    client = client_for("alpha", key=None)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        paid = client.post(f"/pay/simulator/{order.pk}", {"action": "pay"})
    shown = client.get(f"/pay/simulator/{order.pk}")
    waiting = client.get(f"/pay/simulator/{order.pk}/payments/simpay_x")

    for response in (paid, shown, waiting):
        assert_unknown_provider(response)
    assert callbacks == []  # nothing queued for delivery
    assert wallet(channels, order)["available"] == 0


def test_an_order_cannot_name_a_provider_that_is_off(client_for, channels, channel_keys, settings):
    settings.PAYMENT_PROVIDERS = ["xendit"]
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Ani")
    response = client_for("alpha").post(
        "/api/v1/orders", {"customer": customer.pk, "quantity": 1, "provider": "simulator"},
        content_type="application/json",
    )  # fmt: skip
    assert_unknown_provider(response)
    with schema_context("alpha"):
        assert not Order.objects.filter(customer=customer).exists()


def production_settings(**env) -> subprocess.CompletedProcess:
    """Import the production settings in a fresh interpreter with exactly this environment."""
    # The documented minimal production environment (docs/operations.md), so that only the payment
    # variables under test decide whether it starts.
    base = {**documented_environment(), "PATH": os.environ.get("PATH", "")}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(  # noqa: S603 - our own interpreter on our own module
        [sys.executable, "-c", "import gateway.settings.production as s; print(s.PAYMENT_PROVIDERS)"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PAYMENT_PROVIDERS": "simulator"}, "PAYMENT_PROVIDERS"),
        ({"PAYMENT_PROVIDERS": "midtrans,simulator", "MIDTRANS_SERVER_KEY": "SB-Mid-server-x"}, "PAYMENT_PROVIDERS"),
        ({"PAYMENT_PROVIDERS": "midtrans"}, "MIDTRANS_SERVER_KEY"),
        ({"PAYMENT_PROVIDERS": "xendit", "XENDIT_SECRET_KEY": "xnd_development_x"}, "XENDIT_CALLBACK_TOKEN"),
        ({"PAYMENT_PROVIDERS": "xendit", "XENDIT_CALLBACK_TOKEN": "tok"}, "XENDIT_SECRET_KEY"),
        ({"PAYMENT_PROVIDERS": "stripe"}, "PAYMENT_PROVIDERS"),
    ],
)
def test_production_refuses_to_start_with_the_simulator_or_a_provider_without_its_secret(env, named):
    result = production_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr


def test_production_starts_with_real_providers_and_their_secrets():
    result = production_settings(
        PAYMENT_PROVIDERS="midtrans,xendit",
        MIDTRANS_SERVER_KEY="SB-Mid-server-x",
        XENDIT_SECRET_KEY="xnd_development_x",
        XENDIT_CALLBACK_TOKEN="tok",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['midtrans', 'xendit']"
