"""One reading of a channel's figures: ``GET /api/v1/balance``, the portal dashboard and the back
office show the same numbers, and the places the units are in add up to the allocation, refunds
included."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context

from billing import quota
from billing.providers import simulator
from billing.retail.models import Order
from tests.billing.factories import unique
from tests.staff_helpers import make_staff, office_client

pytestmark = pytest.mark.django_db

PLACES = ("available", "reserved_for_orders", "in_wallets", "held_for_stamps", "used")


def _pay(client_for, order: dict) -> None:
    body = simulator.event_body(order_id=order["id"], amount_rupiah=order["total_rupiah"], succeeded=True)
    response = client_for("alpha", key=None).post(
        "/api/v1/payments/simulator/webhook",
        data=body,
        content_type="application/json",
        HTTP_SIMULATOR_SIGNATURE=simulator.sign(body),
    )
    assert response.status_code == 200, response.content


def _journey(client_for, alpha) -> dict[str, int]:
    """10 allocated; Ayu buys 2, Budi 5 (both paid); Ayu refunds 1; Budi stamps one document and
    has a second stamp running; Citra's order of 3 is unpaid. Returns customer id -> id."""
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))
    api = client_for("alpha")
    ids = {}
    for name in ("Ayu", "Budi", "Citra"):
        created = api.post(
            "/api/v1/customers", data={"external_ref": unique("c"), "name": name}, content_type="application/json"
        )
        assert created.status_code == 201, created.content
        ids[name] = created.json()["id"]
    orders = {}
    for name, quantity in (("Ayu", 2), ("Budi", 5), ("Citra", 3)):
        placed = api.post(
            "/api/v1/orders", data={"customer": ids[name], "quantity": quantity}, content_type="application/json"
        )
        assert placed.status_code == 201, placed.content
        orders[name] = placed.json()
    _pay(client_for, orders["Ayu"])
    _pay(client_for, orders["Budi"])
    refund = api.post(
        f"/api/v1/orders/{orders['Ayu']['id']}/refunds",
        data={"units": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=unique("refund"),
    )
    assert refund.status_code == 201, refund.content
    done = unique("hold")
    quota.hold_quota(channel_id=alpha.pk, customer_id=ids["Budi"], hold_id=done)
    quota.commit_hold(hold_id=done)
    quota.hold_quota(channel_id=alpha.pk, customer_id=ids["Budi"], hold_id=unique("hold"))
    with schema_context("alpha"):
        assert Order.objects.get(pk=orders["Citra"]["id"]).status == "awaiting_payment"
    return ids


def test_balance_adds_up_to_the_allocation_after_a_refund(client_for, channels):
    alpha = channels["alpha"]
    ids = _journey(client_for, alpha)

    balance = client_for("alpha").get("/api/v1/balance")

    assert balance.status_code == 200, balance.content
    figures = balance.json()
    assert {key: figures[key] for key in (*PLACES, "allocated", "sold", "refunded")} == {
        "allocated": 10,
        "available": 10 - 2 - 5 - 3 + 1,  # the refunded unit is back in stock
        "reserved_for_orders": 3,
        "in_wallets": 1 + 3,  # Ayu 2 - 1 refunded; Budi 5 - 1 used - 1 held
        "held_for_stamps": 1,
        "used": 1,
        "sold": 6,  # 7 sold, 1 refunded
        "refunded": 1,
    }
    assert sum(figures[key] for key in PLACES) == figures["allocated"]
    assert figures["available"] + figures["reserved_for_orders"] + figures["sold"] == figures["allocated"]
    wallets = [client_for("alpha").get(f"/api/v1/customers/{ids[name]}").json()["quota"] for name in ids]
    assert sum(w["available"] for w in wallets) == figures["in_wallets"]
    assert sum(w["held"] for w in wallets) == figures["held_for_stamps"]


def test_portal_and_back_office_show_the_figures_of_balance(client_for, channels):
    alpha = channels["alpha"]
    _journey(client_for, alpha)
    figures = client_for("alpha").get("/api/v1/balance").json()

    portal = Client(HTTP_HOST="alpha.test")
    with schema_context("alpha"):
        portal.force_login(get_user_model().objects.get(username="admin"))
    dashboard = portal.get("/")
    with schema_context("public"):  # the issuer's staff live in the public schema
        office = office_client(make_staff("ops"))
    overview = office.get("/backoffice/")

    assert dashboard.status_code == 200 and overview.status_code == 200
    legend = {part["name"]: part["value"] for part in dashboard.context["stock_parts"]}
    assert legend == {
        "Available": figures["available"],
        "Reserved": figures["reserved_for_orders"],
        "In wallets": figures["in_wallets"],
        "Held": figures["held_for_stamps"],
        "Used": figures["used"],
    }
    assert sum(legend.values()) == figures["allocated"]
    html = dashboard.content.decode()
    assert f'data-testid="balance-in-wallets">{figures["in_wallets"]}<' in html
    assert f'data-testid="balance-refunded">{figures["refunded"]}<' in html
    row = next(r for r in overview.context["rows"] if r["channel"].code == "alpha")
    assert row["balance"] == dashboard.context["balance"]
    office_html = overview.content.decode()
    assert f'data-testid="in-wallets-alpha">{figures["in_wallets"]}<' in office_html
    assert f'data-testid="refunded-alpha">{figures["refunded"]}<' in office_html
