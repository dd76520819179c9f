"""Idempotency-Key on storefront POSTs: replay, reuse, in-flight duplicates, failures, expiry."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway import ratelimit
from gateway.edge.models import IdempotencyRecord
from gateway.idempotency import (
    IDEMPOTENCY_TTL,
    IN_FLIGHT_TIMEOUT,
    Claimed,
    begin_idempotent_request,
    owner_lock_key,
    owner_locks_held,
    purge_expired,
    release_owner_locks,
    request_fingerprint,
)
from tenants.customers.models import Customer
from tests.gateway import urls_edge

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.gateway.urls_edge")]


@pytest.fixture(autouse=True)
def _own_buckets_and_switches(settings):
    settings.RATE_LIMIT_NAMESPACE = f"test-{uuid.uuid4().hex}"
    ratelimit.reset_fallback_state()
    urls_edge.FAIL_NEXT.update(crash=False, unavailable=False, lose_claim=False)
    yield
    urls_edge.FAIL_NEXT.update(crash=False, unavailable=False, lose_claim=False)
    release_owner_locks()  # a claim a test left in flight must not outlive the test


def post(client, path, payload, key=None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, data=json.dumps(payload), content_type="application/json", **extra)


def in_alpha(queryset_fn):
    with schema_context("alpha"):
        return queryset_fn()


def customers():
    return in_alpha(lambda: sorted(Customer.objects.values_list("external_ref", flat=True)))


def records():
    return in_alpha(lambda: list(IdempotencyRecord.objects.values_list("key", "state", "status_code")))


def assert_problem(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    return response.json()


def test_a_retry_with_the_same_key_replays_the_first_answer(client_for):
    client = client_for("alpha")
    first = post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="order-1")
    assert first.status_code == 201
    assert first.json()["key"] == "order-1"  # the view sees request.idempotency_key

    retry = post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="order-1")

    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry["Location"] == first["Location"]
    assert retry["Content-Type"] == first["Content-Type"]
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert retry["X-Request-Id"] != first["X-Request-Id"]  # each request keeps its own id ...
    assert retry["RateLimit"]  # ... and its own rate-limit state
    assert customers() == ["c-1"]  # carried out once
    assert records() == [("order-1", "completed", 201)]


def test_without_a_key_every_post_is_carried_out(client_for):
    client = client_for("alpha")
    assert post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}).status_code == 201
    assert post(client, "/edge/customers", {"external_ref": "c-2", "name": "Budi"}).status_code == 201
    assert customers() == ["c-1", "c-2"]
    assert records() == []


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/edge/customers", {"external_ref": "c-2", "name": "Someone else"}),  # other body
        ("/edge/customers-too", {"external_ref": "c-1", "name": "Ani"}),  # other path
    ],
)
def test_the_same_key_for_another_request_is_refused_and_changes_nothing(client_for, path, payload):
    client = client_for("alpha")
    post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="order-1")
    before = records()

    refused = post(client, path, payload, key="order-1")

    body = assert_problem(refused, 409, "idempotency_key_reused")
    assert "order-1" in body["detail"]
    assert customers() == ["c-1"]
    assert records() == before


def test_keys_are_scoped_per_api_key(client_for, channels):
    from gateway.apikeys import issue_api_key

    other_key = issue_api_key(channel=channels["alpha"], name="second terminal").plaintext
    payload = {"external_ref": "c-1", "name": "Ani"}
    assert post(client_for("alpha"), "/edge/customers", payload, key="k-1").status_code == 201

    second = post(client_for("alpha", key=other_key), "/edge/customers", {**payload, "external_ref": "c-9"}, key="k-1")

    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert customers() == ["c-1", "c-9"]


def test_a_duplicate_while_the_first_is_in_flight_gets_409_in_progress(client_for, channel_keys):
    from gateway.models import ApiKey

    api_key = ApiKey.objects.get(prefix=channel_keys["alpha"].split("_")[1])
    body = json.dumps({"external_ref": "c-1", "name": "Ani"}).encode()
    fingerprint = request_fingerprint(
        method="POST", path="/edge/customers", api_key_id=api_key.pk, body_sha256=_sha256(body)
    )
    with schema_context("alpha"):  # the first request has claimed the key and is still running
        claim = begin_idempotent_request(
            api_key_id=api_key.pk, key="order-1", fingerprint=fingerprint, method="POST", path="/edge/customers"
        )
    assert isinstance(claim, Claimed)

    duplicate = post(client_for("alpha"), "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="order-1")

    assert_problem(duplicate, 409, "idempotency_request_in_progress")
    assert duplicate["Retry-After"] == "1"
    assert customers() == []
    assert records() == [("order-1", "in_progress", None)]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_two_concurrent_requests_with_one_key_run_once(client_for):
    """A real race: the first request is held inside its handler (in another thread, with its own
    database connection) while the duplicate arrives; the unique constraint decides."""
    key = f"race-{uuid.uuid4().hex}"
    ref = f"slow-{uuid.uuid4().hex[:12]}"
    urls_edge.ENTERED.clear()
    urls_edge.PROCEED.clear()
    results = {}

    def first_request():
        try:
            results["first"] = post(client_for("alpha"), "/edge/slow", {"external_ref": ref}, key=key)
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert urls_edge.ENTERED.wait(timeout=30)
        duplicate = post(client_for("alpha"), "/edge/slow", {"external_ref": ref}, key=key)
    finally:
        urls_edge.PROCEED.set()
        thread.join(timeout=60)

    assert_problem(duplicate, 409, "idempotency_request_in_progress")
    assert results["first"].status_code == 201
    retry = post(client_for("alpha"), "/edge/slow", {"external_ref": ref}, key=key)
    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.content == results["first"].content
    assert in_alpha(lambda: Customer.objects.filter(external_ref=ref).count()) == 1
    _cleanup_committed_rows(key=key, ref=ref)


def _cleanup_committed_rows(*, key: str, ref: str) -> None:
    """The other thread committed for real (outside this test's transaction); remove what it wrote."""

    def cleanup():
        try:
            with schema_context("alpha"):
                IdempotencyRecord.objects.filter(key=key).delete()
                Customer.objects.filter(external_ref=ref).delete()
        finally:
            connection.close()

    worker = threading.Thread(target=cleanup)
    worker.start()
    worker.join(timeout=60)


def test_a_validation_error_is_a_final_answer_and_is_replayed(client_for):
    client = client_for("alpha")
    first = post(client, "/edge/customers", {"name": "no ref"}, key="bad-1")
    assert_problem(first, 400, "validation_failed")

    retry = post(client, "/edge/customers", {"name": "no ref"}, key="bad-1")

    assert retry.status_code == 400
    assert retry.content == first.content
    assert retry["Content-Type"] == "application/problem+json"
    assert retry["Idempotent-Replayed"] == "true"
    assert records() == [("bad-1", "completed", 400)]


def test_a_refused_request_leaves_none_of_its_writes_but_its_answer_is_kept(client_for):
    client = client_for("alpha")
    payload = {"external_ref": "c-1", "name": "Ani", "out_of_stock": True}
    first = post(client, "/edge/customers", payload, key="k-1")
    assert_problem(first, 409, "out_of_stock")
    assert customers() == []  # the customer row written before the refusal was rolled back

    retry = post(client, "/edge/customers", payload, key="k-1")

    assert retry.status_code == 409
    assert retry["Idempotent-Replayed"] == "true"
    assert customers() == []


def test_a_crash_rolls_the_work_back_and_releases_the_key_for_a_retry(client_for):
    client = client_for("alpha")
    client.raise_request_exception = False
    payload = {"external_ref": "c-1", "name": "Ani"}
    urls_edge.FAIL_NEXT["crash"] = True

    crashed = post(client, "/edge/customers", payload, key="k-1")

    assert_problem(crashed, 500, "internal_error")
    assert customers() == []  # written before the crash, rolled back with it
    assert records() == []  # the key is free again
    retry = post(client, "/edge/customers", payload, key="k-1")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert customers() == ["c-1"]


def test_a_request_that_lost_its_claim_rolls_back_and_says_so(client_for):
    client = client_for("alpha")
    payload = {"external_ref": "c-1", "name": "Ani"}
    urls_edge.FAIL_NEXT["lose_claim"] = True

    response = post(client, "/edge/customers", payload, key="k-1")

    assert_problem(response, 409, "idempotency_request_in_progress")
    assert customers() == []  # its work was rolled back: the request now holding the key counts


def test_a_503_is_not_stored_either(client_for):
    client = client_for("alpha")
    payload = {"external_ref": "c-1", "name": "Ani"}
    urls_edge.FAIL_NEXT["unavailable"] = True

    assert_problem(post(client, "/edge/customers", payload, key="k-1"), 503, "service_unavailable")

    assert customers() == []
    assert records() == []
    assert post(client, "/edge/customers", payload, key="k-1").status_code == 201


def test_a_rate_limited_request_does_not_use_up_the_key(client_for, channels):
    type(channels["alpha"]).objects.filter(pk=channels["alpha"].pk).update(rate_limit_per_key=1, rate_limit_burst=1)
    client = client_for("alpha")
    assert client.get("/edge/echo").status_code == 200  # spends the only token

    refused = post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")

    assert_problem(refused, 429, "rate_limited")
    assert records() == []
    assert customers() == []


@pytest.mark.parametrize("key", ["", "x" * 256, "kunci-\u00e9", "tab\there", "nul\x01"])
def test_a_malformed_key_is_refused_and_changes_nothing(client_for, key):
    refused = post(client_for("alpha"), "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key=key)
    assert_problem(refused, 400, "invalid_idempotency_key")
    assert customers() == []
    assert records() == []


@pytest.mark.parametrize("key", ["a", "x" * 255, "9f1c6c1e-3b4a-4c43-9a57-5c2f1a8e0b7d", "order 42 / retry ~"])
def test_well_formed_keys_are_accepted(client_for, key):
    assert (
        post(client_for("alpha"), "/edge/customers", {"external_ref": "c-1", "name": "A"}, key=key).status_code == 201
    )
    assert records() == [(key, "completed", 201)]


def test_get_requests_ignore_the_header(client_for):
    response = client_for("alpha").get("/edge/echo", HTTP_IDEMPOTENCY_KEY="")
    assert response.status_code == 200
    assert records() == []


def test_an_expired_key_can_be_used_again(client_for):
    client = client_for("alpha")
    post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")
    in_alpha(lambda: IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1)))

    again = post(client, "/edge/customers", {"external_ref": "c-2", "name": "Budi"}, key="k-1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert customers() == ["c-1", "c-2"]
    assert records() == [("k-1", "completed", 201)]


def test_a_request_abandoned_in_flight_is_taken_over_by_a_retry(client_for, channel_keys):
    from gateway.models import ApiKey

    api_key = ApiKey.objects.get(prefix=channel_keys["alpha"].split("_")[1])
    payload = json.dumps({"external_ref": "c-1", "name": "Ani"}).encode()
    fingerprint = request_fingerprint(
        method="POST", path="/edge/customers", api_key_id=api_key.pk, body_sha256=_sha256(payload)
    )
    long_ago = timezone.now() - IN_FLIGHT_TIMEOUT - timedelta(seconds=1)
    with schema_context("alpha"):  # its process died mid-request, long ago
        begin_idempotent_request(
            api_key_id=api_key.pk,
            key="k-1",
            fingerprint=fingerprint,
            method="POST",
            path="/edge/customers",
            now=long_ago,
        )

    retry = post(client_for("alpha"), "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")

    assert retry.status_code == 201
    assert customers() == ["c-1"]
    assert records() == [("k-1", "completed", 201)]


def test_multipart_retries_match_whatever_the_boundary(client_for):
    client = client_for("alpha")

    def upload(boundary: str, content: bytes = b"%PDF-1.7 hello"):
        body = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="external_ref"\r\n\r\nc-1\r\n'
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="document"; filename="akta.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return client.generic(
            "POST",
            "/edge/upload",
            body,
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_IDEMPOTENCY_KEY="up-1",
        )

    first = upload("boundaryAAAA")
    assert first.status_code == 202
    retry = upload("boundaryBBBB")
    assert retry.status_code == 202
    assert retry["Idempotent-Replayed"] == "true"
    assert_problem(upload("boundaryCCCC", content=b"%PDF-1.7 other"), 409, "idempotency_key_reused")
    assert customers() == ["c-1"]


def test_purge_removes_only_expired_records(client_for):
    client = client_for("alpha")
    for n in (1, 2):
        post(client, "/edge/customers", {"external_ref": f"c-{n}", "name": "A"}, key=f"k-{n}")
    in_alpha(lambda: IdempotencyRecord.objects.filter(key="k-1").update(expires_at=timezone.now()))

    assert purge_expired(schema_name="alpha") == 1
    assert purge_expired() == 0  # every channel's schema: nothing else is old

    assert [r[0] for r in records()] == ["k-2"]
    assert in_alpha(lambda: IdempotencyRecord.objects.get().expires_at) > timezone.now() + IDEMPOTENCY_TTL - timedelta(
        minutes=5
    )


def test_purge_refuses_the_public_schema():
    with pytest.raises(ValueError, match="channel schemas"):
        purge_expired(schema_name="public")


def test_a_replay_writes_nothing(client_for):
    from tests import protocol

    client = client_for("alpha")
    post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")
    with protocol.sent(connection) as sent:
        replay = post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")
    assert replay["Idempotent-Replayed"] == "true"
    statements = sent.verbs()
    # (the API key comes from the cache the first request filled) the claim, refused by the unique
    # constraint; the read of the stored answer
    assert statements == ["SAVEPOINT", "INSERT", "ROLLBACK", "RELEASE", "SELECT"]


# --------------------------------------------------------------------------- owner locks


def _alpha_api_key(channel_keys):
    from gateway.models import ApiKey

    return ApiKey.objects.get(prefix=channel_keys["alpha"].split("_")[1])


def _claim_in_flight(channel_keys, key: str, payload: dict) -> Claimed:
    """What a request has done when it is killed mid-way: it claimed ``key`` (and holds its owner lock)."""
    api_key = _alpha_api_key(channel_keys)
    fingerprint = request_fingerprint(
        method="POST", path="/edge/customers", api_key_id=api_key.pk, body_sha256=_sha256(json.dumps(payload).encode())
    )
    with schema_context("alpha"):
        claim = begin_idempotent_request(
            api_key_id=api_key.pk, key=key, fingerprint=fingerprint, method="POST", path="/edge/customers"
        )
    assert isinstance(claim, Claimed)
    assert claim.owner_lock == owner_lock_key(api_key_id=api_key.pk, key=key)
    assert owner_locks_held() == {claim.owner_lock}
    return claim


def _other_session():
    """A connection of its own, as another process would have."""
    import psycopg

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    return psycopg.connect(**params, autocommit=True)


def _lock_is_free(lock: int) -> bool:
    with _other_session() as other:
        got = other.execute("SELECT pg_try_advisory_lock(%s)", [lock]).fetchone()[0]
        if got:
            other.execute("SELECT pg_advisory_unlock(%s)", [lock])
    return got


def test_a_claim_whose_owner_connection_is_gone_is_taken_over_at_once(client_for, channel_keys):
    payload = {"external_ref": "c-1", "name": "Ani"}
    claim = _claim_in_flight(channel_keys, "k-dead", payload)
    release_owner_locks()  # the owner's process died: PostgreSQL dropped its connection and its lock

    retry = post(client_for("alpha"), "/edge/customers", payload, key="k-dead")

    assert retry.status_code == 201  # not 409, and not after IN_FLIGHT_TIMEOUT
    assert "Idempotent-Replayed" not in retry
    assert customers() == ["c-1"]
    assert records() == [("k-dead", "completed", 201)]
    assert owner_locks_held() == frozenset()
    assert _lock_is_free(claim.owner_lock)


def test_a_claim_lives_exactly_as_long_as_its_owner_connection(client_for, channel_keys):
    payload = {"external_ref": "c-1", "name": "Ani"}
    claim = _claim_in_flight(channel_keys, "k-alive", payload)
    release_owner_locks()
    owner = _other_session()  # the owner, alive in another process: it holds the claim's lock
    assert owner.execute("SELECT pg_try_advisory_lock(%s)", [claim.owner_lock]).fetchone()[0]
    try:
        while_alive = post(client_for("alpha"), "/edge/customers", payload, key="k-alive")

        assert_problem(while_alive, 409, "idempotency_request_in_progress")
        assert while_alive["Retry-After"] == "1"
        assert customers() == []
        assert records() == [("k-alive", "in_progress", None)]
        assert owner_locks_held() == frozenset()  # the refused retry kept nothing
    finally:
        owner.close()  # the owner dies

    after = post(client_for("alpha"), "/edge/customers", payload, key="k-alive")

    assert after.status_code == 201
    assert customers() == ["c-1"]
    assert records() == [("k-alive", "completed", 201)]


@pytest.mark.parametrize(
    ("switch", "payload", "status"),
    [
        (None, {"external_ref": "c-1", "name": "Ani"}, 201),  # answer stored
        (None, {"name": "no ref"}, 400),  # refusal stored
        ("crash", {"external_ref": "c-1", "name": "Ani"}, 500),  # exception: key released
        ("unavailable", {"external_ref": "c-1", "name": "Ani"}, 503),  # not final: key released
        ("lose_claim", {"external_ref": "c-1", "name": "Ani"}, 409),  # claim lost while running
    ],
)
def test_the_owner_lock_is_given_back_on_every_exit(client_for, channel_keys, switch, payload, status):
    client = client_for("alpha")
    client.raise_request_exception = False
    if switch:
        urls_edge.FAIL_NEXT[switch] = True

    response = post(client, "/edge/customers", payload, key="k-exit")

    assert response.status_code == status
    assert owner_locks_held() == frozenset()
    assert _lock_is_free(owner_lock_key(api_key_id=_alpha_api_key(channel_keys).pk, key="k-exit"))


def test_replays_and_refusals_keep_no_owner_lock(client_for, channel_keys):
    client = client_for("alpha")
    post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")

    assert post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1")["Idempotent-Replayed"]
    assert_problem(
        post(client, "/edge/customers", {"external_ref": "c-2", "name": "B"}, key="k-1"), 409, "idempotency_key_reused"
    )

    assert owner_locks_held() == frozenset()
    assert _lock_is_free(owner_lock_key(api_key_id=_alpha_api_key(channel_keys).pk, key="k-1"))


def test_a_broken_lock_connection_is_replaced(client_for, channel_keys):
    client = client_for("alpha")
    assert post(client, "/edge/customers", {"external_ref": "c-1", "name": "Ani"}, key="k-1").status_code == 201
    with connection.cursor() as cursor:  # PostgreSQL restarted, say: the lock connection is dead
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND datname = current_database() AND application_name = 'gateway-idempotency-locks'"
        )
        assert cursor.fetchone() == (True,)

    second = post(client, "/edge/customers", {"external_ref": "c-2", "name": "Budi"}, key="k-2")

    assert second.status_code == 201
    assert customers() == ["c-1", "c-2"]
    assert owner_locks_held() == frozenset()


def test_owner_locks_can_be_turned_off(client_for, channel_keys, settings):
    settings.IDEMPOTENCY_OWNER_LOCKS = False
    payload = {"external_ref": "c-1", "name": "Ani"}
    api_key = _alpha_api_key(channel_keys)
    fingerprint = request_fingerprint(
        method="POST", path="/edge/customers", api_key_id=api_key.pk, body_sha256=_sha256(json.dumps(payload).encode())
    )
    with schema_context("alpha"):
        claim = begin_idempotent_request(
            api_key_id=api_key.pk, key="k-1", fingerprint=fingerprint, method="POST", path="/edge/customers"
        )
    assert claim.owner_lock is None and owner_locks_held() == frozenset()

    duplicate = post(client_for("alpha"), "/edge/customers", payload, key="k-1")

    assert_problem(duplicate, 409, "idempotency_request_in_progress")  # only the lease can free it now
