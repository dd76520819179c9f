"""One timestamp style in every API answer and webhook: ISO 8601 in UTC with ``Z``
(``2026-11-29T05:22:31.913694Z``); the upload-verify page prints a readable local time."""

from __future__ import annotations

import io
import json
import re

import pytest
from django_tenants.utils import schema_context

from billing import quota
from billing.retail.models import Order
from issuer.services import stamp_document
from outbox import webhooks
from outbox.models import WebhookDelivery
from tenants.customers.models import Customer
from tests.billing.factories import funded_wallet, unique
from tests.billing.test_retail import webhook
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
BOX = {"llx": 400, "lly": 50, "urx": 520, "ury": 130}


def timestamps(value, path="") -> dict[str, str]:
    """Every ``*_at`` / ``*_time`` / ``created`` string in a JSON value, by where it is."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if isinstance(item, str) and (key.endswith(("_at", "_time")) or key == "created"):
                found[where] = item
            else:
                found.update(timestamps(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(timestamps(item, f"{path}[{index}]"))
    return found


def assert_utc_z(value) -> None:
    found = timestamps(value)
    assert found, value
    assert {where: t for where, t in found.items() if not UTC_Z.match(t)} == {}


def _pdf(name: str) -> io.BytesIO:
    upload = io.BytesIO(text_pdf())
    upload.name = name
    return upload


def test_every_storefront_timestamp_is_utc_with_z(client_for, channels):
    alpha = channels["alpha"]
    quota.allocate_stock(channel_id=alpha.pk, units=10, reference=unique("dep"))
    api = client_for("alpha")
    customer = api.post(
        "/api/v1/customers", {"external_ref": unique("c"), "name": "Siti"}, content_type="application/json"
    ).json()
    order = api.post(
        "/api/v1/orders", {"customer": customer["id"], "quantity": 2}, content_type="application/json"
    ).json()
    with schema_context("alpha"):
        webhooks.create_webhook_endpoint(url="http://127.0.0.1:9/hook", events=["*"])
        webhook(client_for, Order.objects.get(pk=order["id"]), payment_ref=unique("pay"))
    refund = api.post(
        f"/api/v1/orders/{order['id']}/refunds", {"units": 1}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="t"
    ).json()
    stamper_id = funded_wallet(channel_id=alpha.pk, units=2)
    with schema_context("alpha"):
        Customer.objects.create(id=stamper_id, external_ref=unique("s"), name="Budi")
    batch = api.post(
        "/api/v1/batches", {"customer": stamper_id, "documents": [_pdf("a.pdf")], **BOX}, HTTP_IDEMPOTENCY_KEY="b"
    ).json()

    answers = {
        "customer": customer,
        "customer.get": api.get(f"/api/v1/customers/{customer['id']}").json(),
        "customers": api.get("/api/v1/customers").json(),
        "order": order,  # with payment.expires_at
        "order.get": api.get(f"/api/v1/orders/{order['id']}").json(),
        "orders": api.get("/api/v1/orders").json(),
        "refund": refund,
        "refunds": api.get(f"/api/v1/orders/{order['id']}/refunds").json(),
        "batch": batch,
        "batch.get": api.get(f"/api/v1/batches/{batch['id']}").json(),
        "stamps": api.get("/api/v1/stamps", {"customer": stamper_id}).json(),
    }

    for answer in answers.values():
        assert_utc_z(answer)
    assert "payment" in order and UTC_Z.match(order["payment"]["expires_at"])
    with schema_context("alpha"):
        bodies = [json.loads(webhooks.build_body(d)) for d in WebhookDelivery.objects.order_by("pk")]
    assert bodies
    for body in bodies:
        assert UTC_Z.match(body["created"]), body


@pytest.fixture
def stamped(channels):
    return stamp_document(channel=channels["alpha"], data=text_pdf(), page=1, box=(420.0, 60.0, 520.0, 160.0))


def test_the_verification_api_writes_utc_with_z(client_for, stamped):
    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"

    by_serial = client_for(None).get(f"/api/v1/verify/{stamped.serial}").json()
    by_upload = client_for(None).post("/api/v1/verify", {"document": upload}).json()

    assert UTC_Z.match(by_serial["used_at"])
    assert_utc_z(by_upload)
    assert UTC_Z.match(by_upload["stamps"][0]["registry"]["used_at"])


def test_the_upload_verify_page_prints_a_readable_time(client_for, stamped):
    from django.utils import timezone

    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"
    html = client_for(None).post("/verify", {"document": upload}).content.decode()  # (the test client skips CSRF)

    readable = timezone.localtime(stamped.signed_at).strftime("%-d %B %Y, %H:%M:%S")
    assert "Stamped at <time datetime=" in html
    assert f"{readable} WIB</time>" in html
    assert "+00:00" not in html
    assert not re.search(r">\d{4}-\d\d-\d\dT", html)  # no raw ISO string shown as text
