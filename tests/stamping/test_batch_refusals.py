"""A batch with bad documents names every one of them (index and file name), and holds nothing."""

from __future__ import annotations

import io

import pytest
from django_tenants.utils import schema_context

from billing import quota
from stamping.models import Batch, StampJob
from tenants.customers.models import Customer
from tests.billing.factories import funded_wallet
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

BOX = {"llx": 400, "lly": 50, "urx": 520, "ury": 130}


def _file(name: str, data: bytes) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


@pytest.fixture
def customer(channels):
    customer_id = funded_wallet(channel_id=channels["alpha"].pk, units=5)
    with schema_context("alpha"):
        return Customer.objects.create(id=customer_id, external_ref=f"batch-{customer_id}", name="Siti")


def _counts(channel, customer) -> tuple:
    with schema_context("alpha"):
        rows = (Batch.objects.count(), StampJob.objects.count())
    return rows, quota.wallet_balance(channel_id=channel.pk, customer_id=customer.pk)


def test_every_refused_document_of_a_batch_is_named(client_for, channels, customer):
    before = _counts(channels["alpha"], customer)
    documents = [
        _file("a.pdf", text_pdf()),
        _file("surat.txt", b"not a pdf at all"),
        _file("c.pdf", text_pdf()),
        _file("kontrak.pdf", b"%PDF-1.7\n garbage"),
    ]

    response = client_for("alpha").post(
        "/api/v1/batches", {"customer": customer.pk, "documents": documents, **BOX}, HTTP_IDEMPOTENCY_KEY="bad-batch"
    )

    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert response.status_code == body["status"] == 415, body
    assert body["code"] == "not_a_pdf"  # the first refused document's code
    assert [(d["index"], d["file_name"]) for d in body["documents"]] == [(1, "surat.txt"), (3, "kontrak.pdf")]
    assert all(d["code"] and d["detail"] for d in body["documents"])
    assert "index 1 (surat.txt), 3 (kontrak.pdf)" in body["detail"]
    assert body["request_id"] == response["X-Request-Id"]
    assert _counts(channels["alpha"], customer) == before  # nothing held, no batch, no job


def test_a_good_batch_is_still_accepted_whole(client_for, channels, customer):
    documents = [_file("a.pdf", text_pdf()), _file("b.pdf", text_pdf())]

    response = client_for("alpha").post(
        "/api/v1/batches", {"customer": customer.pk, "documents": documents, **BOX}, HTTP_IDEMPOTENCY_KEY="good-batch"
    )

    assert response.status_code == 202, response.content
    assert [j["file_name"] for j in response.json()["jobs"]] == ["a.pdf", "b.pdf"]
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer.pk)["held"] == 2
