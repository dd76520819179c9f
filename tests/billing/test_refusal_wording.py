"""Refusals say what is true, in good English: a wrong key is not "missing"; 1 unit is not "1 units"."""

from __future__ import annotations

import io

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.retail import services as retail
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.billing.test_retail import webhook
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key", ["emk_nope_nope", "beta", "not-even-a-key"])
def test_an_invalid_key_is_not_called_missing(client_for, key):
    response = client_for("alpha", key=key).get("/api/v1/balance")

    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")
    assert "missing" not in response.json()["detail"].lower()


def test_no_key_at_all_is_authentication_required(client_for):
    response = client_for("alpha", key=None).get("/api/v1/balance")
    assert (response.status_code, response.json()["code"]) == (401, "authentication_required")


def _pdf(name: str) -> io.BytesIO:
    upload = io.BytesIO(text_pdf())
    upload.name = name
    return upload


@pytest.mark.parametrize(("stamped", "detail"), [(2, "Only 1 unused unit is in the wallet."), (3, "No unused units")])
def test_a_refund_of_more_than_the_wallet_holds_counts_in_good_english(client_for, channels, stamped, detail):
    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Siti")
        order = retail.create_order(channel=alpha, customer=customer, quantity=3)
    webhook(client_for, order, payment_ref=unique("pay"))
    api = client_for("alpha")
    held = api.post(
        "/api/v1/batches",
        {"customer": customer.pk, "documents": [_pdf(f"{i}.pdf") for i in range(stamped)], "llx": 400, "lly": 50,
         "urx": 520, "ury": 130},
        HTTP_IDEMPOTENCY_KEY=unique("b"),
    )  # fmt: skip
    assert held.status_code == 202, held.content

    refused = api.post(
        f"/api/v1/orders/{order.pk}/refunds", {"units": 2}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="r"
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "refund_not_allowed")
    assert refused.json()["detail"].startswith(detail)
