"""Idempotency-Key on the stamp request: a retry never holds a second unit, and a refusal is replayed."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db


def test_stamp_with_key_and_no_quota_replays_the_refusal(client_for, channels):
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        c = Customer.objects.create(external_ref=unique("c"), name="Broke")
    client = client_for("alpha")
    document = text_pdf()  # one document: a retry sends the same bytes (each text_pdf() gets a fresh /ID)

    def post():
        return client.post(
            "/api/v1/stamps",
            {
                "customer": c.pk,
                "page": 1,
                "llx": 40,
                "lly": 40,
                "urx": 140,
                "ury": 140,
                "document": SimpleUploadedFile("a.pdf", document, "application/pdf"),
            },
            HTTP_IDEMPOTENCY_KEY="k-broke-1",
        )

    first = post()
    second = post()
    assert first.status_code == 409 and first.json()["code"] == "insufficient_quota", first.content
    assert second.status_code == 409 and second.get("Idempotent-Replayed") == "true", second.content


def test_stamp_with_key_twice_holds_once(client_for, channels):
    from tenants.customers.models import Customer

    alpha = channels["alpha"]
    cid = funded_wallet(channel_id=alpha.pk, units=2)
    with schema_context("alpha"):
        Customer.objects.create(id=cid, external_ref=unique("c"), name="Once")
    client = client_for("alpha")
    pdf = text_pdf()

    def post():
        return client.post(
            "/api/v1/stamps",
            {
                "customer": cid,
                "page": 1,
                "llx": 40,
                "lly": 40,
                "urx": 140,
                "ury": 140,
                "document": SimpleUploadedFile("a.pdf", pdf, "application/pdf"),
            },
            HTTP_IDEMPOTENCY_KEY="k-once-1",
        )

    a = post()
    b = post()
    assert a.status_code == 202 and b.status_code == 202 and a.json()["id"] == b.json()["id"]
    from billing import quota

    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=cid) == {"available": 1, "held": 1, "used": 0}
