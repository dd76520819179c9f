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
    from gateway.apikeys import issue_api_key
    from tenants.models import Channel
    from tests import protocol

    api_key = issue_api_key(channel=Channel.objects.get(code="alpha"), name=f"claims {uuid.uuid4().hex[:6]}")
    key = f"one-{uuid.uuid4().hex}"
    claim = dict(api_key_id=api_key.api_key.pk, key=key, fingerprint="f" * 64, method="POST", path="/edge/customers")
    with schema_context("alpha"):
        assert not connection.in_atomic_block
        with protocol.sent(connection) as sent:
            first = begin_idempotent_request(**claim)
        assert isinstance(first, Claimed)
        statements = sent.verbs(skip=("SET ",))
        assert statements == ["INSERT"]
        with pytest.raises(IdempotencyRequestInProgress):
            begin_idempotent_request(**claim)
        assert IdempotencyRecord.objects.filter(key=key).count() == 1  # the connection still answers
        IdempotencyRecord.objects.filter(key=key).delete()
    release_owner_locks()


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_a_claim_on_its_own_does_not_wait_for_its_flush_and_inside_a_transaction_changes_nothing(live_db):
    """On its own the claim commits without waiting for its WAL flush (the work's commit flushes it), and
    the connection's next transaction waits again. Made inside a caller's transaction, the claim leaves
    that transaction's commit as durable as ever: the setting would last to its end."""
    from django.db import transaction

    from gateway.apikeys import issue_api_key
    from tenants.models import Channel
    from tests import protocol

    api_key = issue_api_key(channel=Channel.objects.get(code="alpha"), name=f"claims {uuid.uuid4().hex[:6]}")
    claim = dict(api_key_id=api_key.api_key.pk, fingerprint="f" * 64, method="POST", path="/edge/customers")
    alone, inside = f"alone-{uuid.uuid4().hex}", f"inside-{uuid.uuid4().hex}"
    try:
        with schema_context("alpha"):
            with protocol.sent(connection) as sent:
                assert isinstance(begin_idempotent_request(key=alone, **claim), Claimed)
            (insert,) = [sql for sql in sent.statements if sql.startswith("INSERT")]
            assert "set_config('synchronous_commit', 'off', true)" in insert
            assert _synchronous_commit() == "on"  # the claim's own transaction only
            with transaction.atomic():
                with protocol.sent(connection) as sent:
                    assert isinstance(begin_idempotent_request(key=inside, **claim), Claimed)
                assert any(sql.startswith("INSERT") for sql in sent.statements)
                assert not any("synchronous_commit" in sql for sql in sent.statements)
                assert _synchronous_commit() == "on"
            assert IdempotencyRecord.objects.filter(key__in=[alone, inside]).count() == 2
    finally:
        with schema_context("alpha"):
            IdempotencyRecord.objects.filter(key__in=[alone, inside]).delete()
        release_owner_locks()


def test_a_stamp_request_makes_no_savepoint_around_its_handler_and_a_refusal_still_leaves_nothing(live_db, client_for):
    """A stamp request's transaction (the intake and the stored answer) has no savepoint, neither around
    the handler nor around the intake (two round trips each). A refused request is rolled back whole
    and its answer stored on its own: replayed, with no job and no hold left."""
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
    assert savepoints == [], savepoints

    refused_key = f"no-{uuid.uuid4().hex}"
    refused = post(refused_key)  # the one unit is held by the first
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_quota", refused.content
    replayed = post(refused_key)
    assert replayed.status_code == 409 and replayed["Idempotent-Replayed"] == "true"
    with schema_context("alpha"):
        assert StampJob.objects.filter(customer_id=customer_id).count() == 1
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 1
    release_owner_locks()


def test_a_stale_cached_account_answers_503_with_retry_after_and_the_same_key_then_stamps_once(live_db, client_for):
    """Inside the edge's transaction the intake has no savepoint, so a stale cached used-units account
    (L0007) cannot be retried in there: the answer is problem+json ``service_unavailable`` with
    ``Retry-After``, nothing is held, the key is not kept, and a retry with the same key stamps once."""
    from billing import quota
    from billing.ledger import services as ledger
    from stamping.models import StampJob
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tests.billing.factories import funded_wallet, unique
    from tests.fixtures.pdfs.factory import text_pdf

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=2)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Stale account")
    real = quota.used_account(channel_id=alpha.pk, customer_id=customer_id)
    (code,) = [code for code, value in ledger._account_ids.items() if value == real]
    ledger._account_ids[code] = 10**15 + 5  # no such account
    client = client_for("alpha")
    form = {"customer": customer_id, "page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}
    key = f"stale-{uuid.uuid4().hex}"

    def post():
        return client.post("/api/v1/stamps", {**form, "document": _pdf(text_pdf())}, HTTP_IDEMPOTENCY_KEY=key)

    refused = post()
    assert refused.status_code == 503 and refused["Content-Type"] == "application/problem+json", refused.content
    assert refused.json()["code"] == "service_unavailable" and refused["Retry-After"] == "1"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 0
    accepted = post()
    assert accepted.status_code == 202, accepted.content
    assert post().json()["id"] == accepted.json()["id"]  # the retry of the retry: its stored answer
    with schema_context("alpha"):
        assert StampJob.objects.filter(customer_id=customer_id).count() == 1
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 1
    release_owner_locks()


def _pdf(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("a.pdf", data, content_type="application/pdf")


def test_the_claim_and_the_answer_written_as_plain_statements_read_back_as_the_model_says(live_db):
    """The claim and the stored answer skip the ORM's save and update (``idempotency._INSERT_CLAIM``,
    ``_COMPLETE``): read back through the model, every column holds what the model would have written."""
    from datetime import timedelta

    from django.utils import timezone

    from gateway import idempotency
    from gateway.apikeys import issue_api_key
    from gateway.idempotency import IDEMPOTENCY_TTL, complete_idempotent_request
    from tenants.models import Channel

    table = IdempotencyRecord._meta.db_table
    assert f"INTO {table} " in idempotency._INSERT_CLAIM and f"UPDATE {table} " in idempotency._COMPLETE

    api_key = issue_api_key(channel=Channel.objects.get(code="alpha"), name=f"columns {uuid.uuid4().hex[:6]}")
    key = f"cols-{uuid.uuid4().hex}"
    now = timezone.now()
    with schema_context("alpha"):
        claimed = begin_idempotent_request(
            api_key_id=api_key.api_key.pk, key=key, fingerprint="a" * 64, method="POST", path="/api/v1/stamps", now=now
        )
        row = IdempotencyRecord.objects.get(pk=claimed.record.pk)
        assert (row.api_key_id, row.key, row.fingerprint) == (api_key.api_key.pk, key, "a" * 64)
        assert (row.request_method, row.request_path, row.state) == ("POST", "/api/v1/stamps", "in_progress")
        assert row.status_code is None and row.response_body is None and row.response_headers == {}
        assert row.created_at == row.locked_at == now and row.expires_at == now + IDEMPOTENCY_TTL
        assert row.completed_at is None
        assert claimed.record.pk == row.pk and claimed.record.locked_at == now

        headers = {"Content-Type": "application/json", "Location": "/api/v1/stamps/x", "X-Request-Id": "not kept"}
        assert complete_idempotent_request(record=claimed.record, status_code=202, body=b'{"id": "x"}', headers=headers)
        row.refresh_from_db()
        assert (row.state, row.status_code, bytes(row.response_body)) == ("completed", 202, b'{"id": "x"}')
        assert row.response_headers == {"Content-Type": "application/json", "Location": "/api/v1/stamps/x"}
        assert timezone.now() - timedelta(minutes=1) < row.completed_at <= timezone.now()
        # A second completion of the same claim finds it completed: the answer stays the first one.
        assert not complete_idempotent_request(record=claimed.record, status_code=500, body=b"", headers={})
        IdempotencyRecord.objects.filter(key=key).delete()
    release_owner_locks()
