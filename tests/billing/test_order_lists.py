"""GET /api/v1/orders (filters, newest first, cursor), an order's refunds and one refund, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.retail import services as retail
from billing.retail.models import Order, Refund
from faces.storefront import views
from tenants.customers.models import Customer
from tests.billing.factories import unique
from tests.billing.test_retail import webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    channel = channels["alpha"]
    quota.allocate_stock(channel_id=channel.pk, units=50, reference=unique("dep"))
    return channel


@pytest.fixture
def shop(alpha):
    """Two customers of alpha; Siti has three orders (one credited), Budi one."""
    with schema_context("alpha"):
        siti = Customer.objects.create(external_ref=unique("siti"), name="Siti")
        budi = Customer.objects.create(external_ref=unique("budi"), name="Budi")
        orders = [retail.create_order(channel=alpha, customer=siti, quantity=q) for q in (1, 2, 3)]
        budis = retail.create_order(channel=alpha, customer=budi, quantity=1)
    return {"siti": siti, "budi": budi, "orders": orders, "budis": budis}


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [o["id"] for o in response.json()["results"]]


def test_orders_are_listed_newest_first_and_filtered_by_customer_and_status(client_for, shop):
    api = client_for("alpha")
    siti_orders = [o.pk for o in reversed(shop["orders"])]

    by_siti = api.get("/api/v1/orders", {"customer": shop["siti"].pk})
    webhook(client_for, shop["orders"][0], payment_ref=unique("pay"))
    credited = api.get("/api/v1/orders", {"customer": shop["siti"].pk, "status": "credited"})

    assert _ids(by_siti) == siti_orders
    assert by_siti.json()["next_cursor"] is None
    first = by_siti.json()["results"][0]
    assert (first["customer"], first["quantity"], first["status"]) == (shop["siti"].pk, 3, "awaiting_payment")
    assert _ids(credited) == [shop["orders"][0].pk]
    assert shop["budis"].pk in _ids(api.get("/api/v1/orders"))
    assert _ids(api.get("/api/v1/orders", {"customer": shop["siti"].pk, "status": "nonsense"})) == []


def test_orders_are_filtered_by_creation_window(client_for, shop):
    api = client_for("alpha")
    old = shop["orders"][0]
    with schema_context("alpha"):
        Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    cut = (timezone.now() - timedelta(days=1)).isoformat()

    before = api.get("/api/v1/orders", {"customer": shop["siti"].pk, "to": cut})
    after = api.get("/api/v1/orders", {"customer": shop["siti"].pk, "from": cut})

    assert _ids(before) == [old.pk]
    assert _ids(after) == [shop["orders"][2].pk, shop["orders"][1].pk]


def test_following_next_cursor_visits_every_order_once(client_for, shop, monkeypatch):
    monkeypatch.setattr(views, "ORDER_PAGE_SIZE", 2)
    api = client_for("alpha")
    with schema_context("alpha"):  # same creation time: the id breaks the tie
        Order.objects.filter(customer=shop["siti"]).update(created_at=timezone.now())
        expected = list(
            Order.objects.filter(customer=shop["siti"]).order_by("-created_at", "-id").values_list("id", flat=True)
        )
    seen, cursor = [], None
    while True:
        body = api.get("/api/v1/orders", {"customer": shop["siti"].pk, **({"cursor": cursor} if cursor else {})})
        seen += _ids(body)
        cursor = body.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"customer": "999999999999"}, 404, "customer_not_found"),
        ({"from": "yesterday"}, 400, "invalid_cursor"),
        ({"cursor": "bm90LW91cnM"}, 400, "invalid_cursor"),
    ],
)
def test_a_bad_order_list_query_is_a_clear_refusal(client_for, shop, query, status, code):
    response = client_for("alpha").get("/api/v1/orders", query)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_stamp_cursor_is_not_an_order_cursor(client_for, shop):
    from gateway.http.pagination import encode_cursor

    cursor = encode_cursor("stamp", timezone.now().isoformat(), "stp_x")
    response = client_for("alpha").get("/api/v1/orders", {"cursor": cursor})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")


def _refund(client_for, order, units, key):
    return client_for("alpha").post(
        f"/api/v1/orders/{order.pk}/refunds",
        data={"units": units},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_an_orders_refunds_are_listed_and_each_can_be_read(client_for, shop, alpha):
    order = shop["orders"][2]
    webhook(client_for, order, payment_ref=unique("pay"))
    first = _refund(client_for, order, 1, "lists-1").json()
    second = _refund(client_for, order, 1, "lists-2").json()
    api = client_for("alpha")

    listed = api.get(f"/api/v1/orders/{order.pk}/refunds")
    one = api.get(f"/api/v1/refunds/{first['id']}")

    assert _ids(listed) == [second["id"], first["id"]]
    assert listed.json()["next_cursor"] is None
    assert one.status_code == 200
    assert one.json() == first
    assert one.json()["status"] == "pending"
    with schema_context("alpha"):
        retail.send_pending_refunds(channel=alpha)
    assert api.get(f"/api/v1/refunds/{first['id']}").json()["status"] == "succeeded"
    assert api.get(f"/api/v1/orders/{shop['orders'][0].pk}/refunds").json() == {"results": [], "next_cursor": None}


def test_an_unknown_refund_or_order_is_not_found(client_for, shop):
    api = client_for("alpha")
    with schema_context("alpha"):
        refunds = Refund.objects.count()

    missing_refund = api.get("/api/v1/refunds/rfd_nope")
    missing_order = api.get("/api/v1/orders/ord_nope/refunds")

    assert (missing_refund.status_code, missing_refund.json()["code"]) == (404, "refund_not_found")
    assert (missing_order.status_code, missing_order.json()["code"]) == (404, "order_not_found")
    with schema_context("alpha"):
        assert Refund.objects.count() == refunds


def test_reading_orders_and_refunds_needs_only_the_read_scope(client_for, channels, shop):
    from gateway.apikeys import issue_api_key

    read_only = issue_api_key(channel=channels["alpha"], name="reader", scopes=("read",)).plaintext
    api = client_for("alpha", key=read_only)
    order = shop["orders"][0]
    assert api.get("/api/v1/orders").status_code == 200
    assert api.get(f"/api/v1/orders/{order.pk}/refunds").status_code == 200
    refused = _refund(lambda *a, **k: api, order, 1, "reader-1")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("quantity", [0, -1, 1_001, 5_000])
def test_an_order_outside_1_to_1000_units_is_invalid_quantity(client_for, shop, alpha, quantity):
    from billing.ledger import services as ledger

    with schema_context("alpha"):
        orders = Order.objects.count()
    stock = ledger.channel_balance(channel_id=alpha.pk).available

    response = client_for("alpha").post(
        "/api/v1/orders",
        {"customer": shop["siti"].pk, "quantity": quantity},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"qty-{quantity}",
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_quantity"
    assert body["detail"] == f"Order between 1 and 1,000 units, not {quantity:,}."
    assert body["request_id"] == response["X-Request-Id"]
    with schema_context("alpha"):
        assert Order.objects.count() == orders
    assert ledger.channel_balance(channel_id=alpha.pk).available == stock


def test_a_quantity_that_is_not_a_number_is_still_validation_failed(client_for, shop):
    response = client_for("alpha").post(
        "/api/v1/orders", {"customer": shop["siti"].pk, "quantity": "many"}, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_failed")
    assert "quantity" in response.json()["errors"]
