"""Isolation and permissions of the storefront API, as a matrix: every endpoint x every wrong principal.

Every refusal is the right status and code, as ``application/problem+json`` with the request id, and
changes nothing: customers, orders, refunds, stamp jobs and batches in both channels' schemas and the
ledger's transfers are counted before and after.

Principals (all on alpha's host, alpha.test):

- ``no_key``: no ``Authorization`` -> 401 ``authentication_required``;
- ``revoked_key`` / ``expired_key``: a key of alpha's that was revoked / has expired -> 401 ``invalid_api_key``;
- ``lacks_scope``: a key of alpha's without the endpoint's scope (read-only for writes; purchase+stamp for
  reads) -> 403 ``permission_denied``;
- ``other_channel_key``: beta's key -> 401 ``invalid_api_key`` (a key is valid only on its own host);
- ``other_channel_ids``: alpha's own key, but beta's object ids -> 404 with the object's ``*_not_found``
  (or ``not_found``): another channel's objects do not exist here.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.billing.factories import new_customer_id
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
BOX = {"llx": 400, "lly": 50, "urx": 520, "ury": 130}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {customer}, {order}, {refund}, {stamp}, {batch}: ids filled in per channel
    scope: str
    body: str | None = None  # "json" / "multipart" templates below
    ids: str | None = None  # which ids the "other channel's ids" row swaps in ("path", "body" or "query")
    not_found: str | None = None  # code answered for another channel's ids


ENDPOINTS = {
    "customers.list": Endpoint("GET", "/api/v1/customers", "read"),
    "customers.create": Endpoint("POST", "/api/v1/customers", "purchase", body="customer"),
    "customers.detail": Endpoint(
        "GET", "/api/v1/customers/{customer}", "read", ids="path", not_found="customer_not_found"
    ),
    "orders.create": Endpoint(
        "POST", "/api/v1/orders", "purchase", body="order", ids="body", not_found="customer_not_found"
    ),
    "orders.list": Endpoint(
        "GET", "/api/v1/orders?customer={customer}", "read", ids="query", not_found="customer_not_found"
    ),
    "orders.detail": Endpoint("GET", "/api/v1/orders/{order}", "read", ids="path", not_found="order_not_found"),
    "orders.refunds": Endpoint(
        "GET", "/api/v1/orders/{order}/refunds", "read", ids="path", not_found="order_not_found"
    ),
    "refunds.detail": Endpoint("GET", "/api/v1/refunds/{refund}", "read", ids="path", not_found="refund_not_found"),
    "orders.refund": Endpoint(
        "POST", "/api/v1/orders/{order}/refunds", "purchase", body="refund", ids="path", not_found="order_not_found"
    ),
    "stamps.list": Endpoint(
        "GET", "/api/v1/stamps?customer={customer}", "read", ids="query", not_found="customer_not_found"
    ),
    "stamps.create": Endpoint(
        "POST", "/api/v1/stamps", "stamp", body="stamp", ids="body", not_found="customer_not_found"
    ),
    "stamps.preview": Endpoint("POST", "/api/v1/stamps/preview", "stamp", body="preview"),
    "stamps.detail": Endpoint("GET", "/api/v1/stamps/{stamp}", "read", ids="path", not_found="stamp_not_found"),
    "stamps.document": Endpoint(
        "GET", "/api/v1/stamps/{stamp}/document", "read", ids="path", not_found="stamp_not_found"
    ),
    "batches.create": Endpoint(
        "POST", "/api/v1/batches", "stamp", body="batch", ids="body", not_found="customer_not_found"
    ),
    "batches.detail": Endpoint("GET", "/api/v1/batches/{batch}", "read", ids="path", not_found="stamp_not_found"),
    "document_types": Endpoint("GET", "/api/v1/document-types", "read"),
    "balance": Endpoint("GET", "/api/v1/balance", "read"),
}

PRINCIPALS = {
    "no_key": (401, "authentication_required"),
    "revoked_key": (401, "invalid_api_key"),
    "expired_key": (401, "invalid_api_key"),
    "lacks_scope": (403, "permission_denied"),
    "other_channel_key": (401, "invalid_api_key"),
    "other_channel_ids": (404, None),  # the endpoint's own *_not_found
}

CASES = [
    pytest.param(endpoint, principal, id=f"{endpoint}-{principal}")
    for endpoint, spec in ENDPOINTS.items()
    for principal in PRINCIPALS
    if principal != "other_channel_ids" or spec.ids  # endpoints without ids have no other channel's ids to try
]


# --------------------------------------------------------------------------- the world: two channels' objects


def _objects(schema: str, customer_id: int) -> dict:
    """A customer, an order with a refund, a stamp job and a batch in ``schema``."""
    from billing.retail.models import Order, Refund
    from stamping.models import Batch, StampJob
    from tenants.customers.models import Customer

    with schema_context(schema):
        customer = Customer.objects.create(id=customer_id, external_ref=f"matrix-{customer_id}", name="Matrix")
        order = Order.objects.create(
            customer=customer,
            quantity=2,
            unit_price_rupiah=10_000,
            fee_per_unit_rupiah=0,
            total_rupiah=20_000,
            provider="simulator",
            expires_at=timezone.now() + timedelta(minutes=30),
        )
        refund = Refund.objects.create(
            order=order, request_key="matrix", units=1, amount_rupiah=10_000, fee_rupiah=0, status="pending"
        )
        batch = Batch.objects.create(customer=customer)
        job = StampJob.objects.create(
            customer=customer,
            batch=batch,
            hold_id=f"matrix:{schema}:{customer_id}",
            sha256_in="0" * 64,
            pages=1,
            page=1,
            llx=400,
            lly=50,
            urx=520,
            ury=130,
        )
    return {"customer": customer.pk, "order": order.pk, "refund": refund.pk, "stamp": job.pk, "batch": batch.pk}


@pytest.fixture
def world(channels):
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        taken = set(Customer.objects.values_list("id", flat=True))
    alpha_customer = new_customer_id()
    beta_customer = new_customer_id()
    while beta_customer in taken or beta_customer == alpha_customer:  # beta's id must name nobody in alpha
        beta_customer = new_customer_id()
    return {"alpha": _objects("alpha", alpha_customer), "beta": _objects("beta", beta_customer)}


@pytest.fixture
def keys(channels, channel_keys):
    from gateway.apikeys import issue_api_key, revoke_api_key

    alpha = channels["alpha"]
    revoked = issue_api_key(channel=alpha, name="revoked")
    revoke_api_key(api_key=revoked.api_key)
    expired = issue_api_key(channel=alpha, name="expired", expires_at=timezone.now() - timedelta(seconds=1))
    return {
        "own": channel_keys["alpha"],
        "other_channel": channel_keys["beta"],
        "revoked": revoked.plaintext,
        "expired": expired.plaintext,
        "read_only": issue_api_key(channel=alpha, name="read only", scopes=("read",)).plaintext,
        "no_read": issue_api_key(channel=alpha, name="writes only", scopes=("purchase", "stamp")).plaintext,
    }


def snapshot() -> dict:
    """Everything a refused request must leave alone."""
    from billing.ledger.models import Transfer
    from billing.retail.models import Order, Payment, Refund
    from stamping.models import Batch, StampJob
    from tenants.customers.models import Customer

    counts = {"transfers": Transfer.objects.count()}
    for schema in ("alpha", "beta"):
        with schema_context(schema):
            counts[schema] = {
                "customers": Customer.objects.count(),
                "orders": Order.objects.count(),
                "payments": Payment.objects.count(),
                "refunds": Refund.objects.count(),
                "stamp_jobs": StampJob.objects.count(),
                "batches": Batch.objects.count(),
            }
    return counts


def _key_for(principal: str, endpoint: Endpoint, keys: dict) -> str | None:
    return {
        "no_key": None,
        "revoked_key": keys["revoked"],
        "expired_key": keys["expired"],
        "lacks_scope": keys["read_only"] if endpoint.scope != "read" else keys["no_read"],
        "other_channel_key": keys["other_channel"],
        "other_channel_ids": keys["own"],
    }[principal]


def _pdf(name: str = "surat.pdf") -> io.BytesIO:
    upload = io.BytesIO(text_pdf())
    upload.name = name
    return upload


def _send(client, endpoint: Endpoint, ids: dict):
    path = endpoint.path.format(**ids)
    if endpoint.method == "GET":
        return client.get(path)
    bodies = {
        "customer": lambda: {"external_ref": "matrix-new", "name": "New"},
        "order": lambda: {"customer": ids["customer"], "quantity": 1},
        "refund": lambda: {"units": 1},
        "stamp": lambda: {"customer": ids["customer"], "document": _pdf(), **BOX},
        "batch": lambda: {"customer": ids["customer"], "documents": [_pdf("a.pdf"), _pdf("b.pdf")], **BOX},
        "preview": lambda: {"document": _pdf(), **BOX},
    }
    body = bodies[endpoint.body]()
    if endpoint.body in ("stamp", "batch", "preview"):
        return client.post(path, body, HTTP_IDEMPOTENCY_KEY=f"matrix-{endpoint.body}")  # multipart
    return client.post(path, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="matrix-1")


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"].endswith("/" + code)
    assert body["request_id"] == response["X-Request-Id"]
    assert body["detail"]


# --------------------------------------------------------------------------- the matrix


@pytest.mark.parametrize(("endpoint_name", "principal"), CASES)
def test_storefront_refuses_the_wrong_principal_and_changes_nothing(endpoint_name, principal, world, keys, client_for):
    endpoint = ENDPOINTS[endpoint_name]
    status, code = PRINCIPALS[principal]
    code = code or endpoint.not_found
    ids = world["beta"] if principal == "other_channel_ids" else world["alpha"]
    client = client_for("alpha", key=_key_for(principal, endpoint, keys))
    before = snapshot()

    response = _send(client, endpoint, ids)

    assert_problem(response, status, code)
    assert snapshot() == before
    if status == 401:
        assert "RateLimit" not in response  # refused before any bucket was charged


def test_the_matrix_covers_every_storefront_route():
    """A new storefront endpoint must join the matrix (the schema and docs routes are public by design)."""
    from django.urls import URLPattern, get_resolver

    routes = {
        str(p.pattern)
        for p in get_resolver("faces.storefront.urls").url_patterns
        if isinstance(p, URLPattern) and getattr(p.callback, "view_class", None) is not None
    }
    covered = {e.path.split("?")[0].removeprefix("/api/v1/") for e in ENDPOINTS.values()}
    covered = {c.replace("{customer}", "<int:customer_id>") for c in covered}
    placeholders = (("order", "order_id"), ("refund", "refund_id"), ("stamp", "job_id"), ("batch", "batch_id"))
    for name, placeholder in placeholders:
        covered = {c.replace("{" + name + "}", f"<str:{placeholder}>") for c in covered}
    # root, documentation, signed webhook, the service mode (what the public status page shows too)
    public = {"", "schema", "docs", "payments/<str:provider>/webhook", "status"}
    assert routes - public == covered


def test_the_happy_path_of_the_same_requests_works(world, keys, client_for):
    """The matrix's requests are refused for the principal, not for being malformed: with alpha's own key
    and alpha's ids, each gets past authentication, scope and lookup."""
    client = client_for("alpha", key=keys["own"])
    for name in (
        "customers.detail",
        "orders.list",
        "orders.detail",
        "orders.refunds",
        "refunds.detail",
        "stamps.detail",
        "batches.detail",
        "stamps.list",
    ):
        assert _send(client, ENDPOINTS[name], world["alpha"]).status_code == 200, name
    assert _send(client, ENDPOINTS["stamps.document"], world["alpha"]).json()["code"] == "document_not_ready"
    assert _send(client, ENDPOINTS["orders.refund"], world["alpha"]).json()["code"] == "refund_not_allowed"
    # a valid stamp request for a customer without quota: checked, then refused for the quota only
    assert _send(client, ENDPOINTS["stamps.create"], world["alpha"]).json()["code"] == "insufficient_quota"


# --------------------------------------------------------------------------- the payment webhook: signed, not keyed


def _webhook_body(order_id: str) -> bytes:
    from billing.providers.simulator import event_body

    return event_body(order_id=order_id, amount_rupiah=20_000, succeeded=True)


@pytest.mark.parametrize(
    ("signature", "order_of", "status", "code"),
    [
        pytest.param(None, "alpha", 401, "invalid_signature", id="unsigned"),
        pytest.param("t=1,v1=00", "alpha", 401, "invalid_signature", id="wrong-signature"),
        pytest.param("stale", "alpha", 401, "invalid_signature", id="stale-signature"),
        pytest.param("valid", "beta", 404, "order_not_found", id="signed-but-other-channels-order"),
    ],
)
def test_payment_webhook_refuses_unsigned_or_foreign_events_and_changes_nothing(
    signature, order_of, status, code, world, keys, client_for
):
    from billing.providers.simulator import SIGNATURE_HEADER, sign

    body = _webhook_body(world[order_of]["order"])
    headers = {}
    if signature == "valid":
        headers[f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}"] = sign(body)
    elif signature == "stale":
        headers[f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}"] = sign(body, timestamp=1)
    elif signature is not None:
        headers[f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}"] = signature
    client = client_for("alpha", key=keys["own"])  # an API key does not stand in for a signature
    before = snapshot()

    response = client.post("/api/v1/payments/simulator/webhook", body, content_type="application/json", **headers)

    assert_problem(response, status, code)
    assert snapshot() == before
