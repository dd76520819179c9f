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
