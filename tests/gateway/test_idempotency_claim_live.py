"""The idempotency claim outside a transaction, as a request makes it (committed data: no test
transaction around it)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from gateway.edge.models import IdempotencyRecord
from gateway.idempotency import Claimed, IdempotencyRequestInProgress, begin_idempotent_request, release_owner_locks


def test_outside_a_transaction_a_claim_is_one_statement_and_a_second_claim_still_finds_it(live_db):
    """A request's claim is its own transaction: one INSERT, not BEGIN, INSERT and COMMIT (each a round
    trip, each a wait for the CPU on a busy machine). The unique violation of a second claim for the
    same key leaves the connection usable, and that claim is refused as in flight."""
    from django.test.utils import CaptureQueriesContext

    from gateway.apikeys import issue_api_key
    from tenants.models import Channel

    api_key = issue_api_key(channel=Channel.objects.get(code="alpha"), name=f"claims {uuid.uuid4().hex[:6]}")
    key = f"one-{uuid.uuid4().hex}"
    claim = dict(api_key_id=api_key.api_key.pk, key=key, fingerprint="f" * 64, method="POST", path="/edge/customers")
    with schema_context("alpha"):
        assert not connection.in_atomic_block
        with CaptureQueriesContext(connection) as captured:
            first = begin_idempotent_request(**claim)
        assert isinstance(first, Claimed)
        statements = [q["sql"].split()[0] for q in captured.captured_queries if not q["sql"].startswith("SET ")]
        assert statements == ["INSERT"]
        with pytest.raises(IdempotencyRequestInProgress):
            begin_idempotent_request(**claim)
        assert IdempotencyRecord.objects.filter(key=key).count() == 1  # the connection still answers
        IdempotencyRecord.objects.filter(key=key).delete()
    release_owner_locks()


def test_a_stamp_request_makes_no_savepoint_around_its_handler_and_a_refusal_still_leaves_nothing(
    live_db, client_for
):
    """A stamp request's transaction (the intake and the stored answer) has one savepoint, the
    intake's own; around the handler there is none (two round trips). A refused request is rolled back
    whole and its answer stored on its own: replayed, with no job and no hold left."""
    from django.test.utils import CaptureQueriesContext

    from billing import quota
    from stamping.models import StampJob
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tests.billing.factories import funded_wallet, unique
    from tests.fixtures.pdfs.factory import text_pdf

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Savepoints")
    client = client_for("alpha")
    form = {"customer": customer_id, "page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}

    def post(key: str):
        return client.post("/api/v1/stamps", {**form, "document": _pdf(text_pdf())}, HTTP_IDEMPOTENCY_KEY=key)

    with CaptureQueriesContext(connection) as captured:
        accepted = post(f"ok-{uuid.uuid4().hex}")
    assert accepted.status_code == 202, accepted.content
    savepoints = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1, savepoints

    refused_key = f"no-{uuid.uuid4().hex}"
    refused = post(refused_key)  # the one unit is held by the first
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_quota", refused.content
    replayed = post(refused_key)
    assert replayed.status_code == 409 and replayed["Idempotent-Replayed"] == "true"
    with schema_context("alpha"):
        assert StampJob.objects.filter(customer_id=customer_id).count() == 1
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 1
    release_owner_locks()


def _pdf(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("a.pdf", data, content_type="application/pdf")
