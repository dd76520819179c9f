"""``pay_url`` points where the customer can reach the server: the Host header's port, or the server's."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from billing import quota
from tenants.customers.models import Customer
from tests.billing.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(channels):
    quota.allocate_stock(channel_id=channels["alpha"].pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        return Customer.objects.create(external_ref=unique("c"), name="Rina")


@pytest.mark.parametrize(
    ("host", "server_port", "secure", "base"),
    [
        ("alpha.test", "8000", False, "http://alpha.test:8000"),  # the README's curl: Host without a port
        ("alpha.test:8443", "8000", False, "http://alpha.test:8443"),  # the Host header's port wins
        ("alpha.test", "80", False, "http://alpha.test"),  # the default port is not written
        ("alpha.test", "443", True, "https://alpha.test"),
        ("alpha.test", "8443", True, "https://alpha.test:8443"),
    ],
)
def test_pay_url_keeps_the_port_the_customer_reached(client_for, customer, host, server_port, secure, base):
    client = client_for("alpha", HTTP_HOST=host)
    reached = {"secure": secure, "SERVER_PORT": server_port}  # (per request: `secure` sets the port too)

    response = client.post(
        "/api/v1/orders", {"customer": customer.pk, "quantity": 1}, content_type="application/json", **reached
    )

    assert response.status_code == 201, response.content
    order = response.json()
    assert order["payment"]["pay_url"] == f"{base}/pay/simulator/{order['id']}"
    assert client.get(f"/api/v1/orders/{order['id']}", **reached).json()["payment"] == order["payment"]
