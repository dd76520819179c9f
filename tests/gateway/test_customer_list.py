"""GET /api/v1/customers: every customer reachable through the cursor, a lookup by the channel's own id,
and a clear refusal for a cursor this API did not give out."""

from __future__ import annotations

import base64

import pytest
from django_tenants.utils import schema_context

from faces.storefront import views
from tenants.customers.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(channels):
    with schema_context("alpha"):
        return [Customer.objects.create(external_ref=f"ref-{i:03d}", name=f"Customer {i}") for i in range(7)]


def test_following_next_cursor_visits_every_customer_once_in_order(client_for, customers, monkeypatch):
    monkeypatch.setattr(views, "CUSTOMER_PAGE_SIZE", 3)
    api = client_for("alpha")
    seen, cursor, pages = [], None, 0
    while True:
        response = api.get("/api/v1/customers", {"cursor": cursor} if cursor else {})
        assert response.status_code == 200
        body = response.json()
        seen += [c["external_ref"] for c in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [c.external_ref for c in customers]
    assert pages == 3  # 3 + 3 + 1


def test_a_full_last_page_ends_without_an_empty_one(client_for, customers, monkeypatch):
    monkeypatch.setattr(views, "CUSTOMER_PAGE_SIZE", 7)
    body = client_for("alpha").get("/api/v1/customers").json()
    assert len(body["results"]) == 7 and body["next_cursor"] is None


def test_a_customer_is_found_by_its_external_ref(client_for, customers):
    api = client_for("alpha")
    body = api.get("/api/v1/customers", {"external_ref": "ref-004"}).json()
    assert [c["id"] for c in body["results"]] == [customers[4].pk] and body["next_cursor"] is None
    assert api.get("/api/v1/customers", {"external_ref": "nobody"}).json()["results"] == []
    nul = api.get("/api/v1/customers", {"external_ref": "ref-\x00"})  # PostgreSQL could not compare it
    assert (nul.status_code, nul.json()["code"]) == (400, "bad_request")


def test_another_channels_customers_are_not_reachable_by_cursor_or_ref(client_for, customers):
    cursor = views._encode_customer_cursor(0)
    body = client_for("beta").get("/api/v1/customers", {"cursor": cursor, "external_ref": "ref-001"}).json()
    assert body["results"] == []


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"customer:abc").decode(),
        base64.urlsafe_b64encode(b"customer:-1").decode(),
        base64.urlsafe_b64encode(b"customer:" + b"9" * 19).decode(),
        base64.urlsafe_b64encode(b"order:12").decode(),
        base64.urlsafe_b64encode("customer:\u0661".encode()).decode(),
        "\u00e9t\u00e9",
    ],
)
def test_a_cursor_this_api_did_not_give_out_is_a_clear_400(client_for, customers, cursor):
    response = client_for("alpha").get("/api/v1/customers", {"cursor": cursor})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_cursor"
