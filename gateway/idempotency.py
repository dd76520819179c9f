"""Idempotency keys: a retried POST gets the first answer instead of being carried out twice.

A caller sends ``Idempotency-Key: <1..255 printable ASCII characters>`` with a POST. The key is
scoped to the API key that sent it (two integrations of one channel, each with its own API key, can
never see each other's answers, and a key with fewer scopes can never replay an answer produced for a
key with more). The first request with a key *claims* it: a row is inserted, and the database's unique
constraint on ``(api_key_id, key)`` decides which of two concurrent requests wins. Then:

- same key, same request, first one finished -> the stored answer is replayed;
- same key, same request, first one still running -> :class:`IdempotencyRequestInProgress` (409);
- same key, different request (method, path, body or API key) -> :class:`IdempotencyKeyReused` (409).

Final answers (2xx, and 4xx except 429 and the 409s above) are stored. On anything else (5xx, or an
exception) the key is released so a retry can run. Records expire after :data:`IDEMPOTENCY_TTL`; a
request in flight for longer than :data:`IN_FLIGHT_TIMEOUT` is presumed dead (its process crashed) and
a retry may take the key over.

The claim must commit on its own, before the work starts (do not run requests under
``ATOMIC_REQUESTS``): otherwise a concurrent duplicate waits on the row lock instead of getting a 409.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from gateway.edge.models import IdempotencyRecord
from gateway.errors import ApplicationError

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_TTL = timedelta(hours=24)
IN_FLIGHT_TIMEOUT = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
# Headers that belong to the answer and are replayed with it (request ids and rate limits are per request).
STORED_HEADERS = ("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified", "Link", "Allow")


class InvalidIdempotencyKey(ApplicationError):
    code = "invalid_idempotency_key"
    http_status = 400
    title = "Invalid Idempotency-Key"


class IdempotencyKeyRequired(ApplicationError):
    """For requests that move money, where a retry without a key could do it twice."""

    code = "idempotency_key_required"
    http_status = 400
    title = "Idempotency-Key required"


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    http_status = 409
    title = "Idempotency-Key already used for another request"


class IdempotencyRequestInProgress(ApplicationError):
    code = "idempotency_request_in_progress"
    http_status = 409
    title = "A request with this Idempotency-Key is still in progress"
    headers = {"Retry-After": "1"}


def validate_idempotency_key(value: str) -> str:
    """``value`` if it is 1..255 printable ASCII characters (space included); else InvalidIdempotencyKey."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in value):
        raise InvalidIdempotencyKey(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters; "
            "a UUID is a good choice. Use a new key for every new request, and the same key for its retries."
        )
    return value


def request_fingerprint(*, method: str, path: str, api_key_id: int, body_sha256: str) -> str:
    """What makes two requests "the same": method, full path (with query), API key and body digest."""
    parts = (method.upper(), path, str(api_key_id), body_sha256)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: run it, then complete (:func:`complete_idempotent_request`) or release it."""

    record: IdempotencyRecord


@dataclass(frozen=True)
class Replay:
    """The key was used before for the same request, which finished: answer with what it answered."""

    record: IdempotencyRecord

    @property
    def status_code(self) -> int:
        return self.record.status_code

    @property
    def body(self) -> bytes:
        return bytes(self.record.response_body or b"")

    @property
    def headers(self) -> dict[str, str]:
        return {**self.record.response_headers, REPLAYED_HEADER: "true"}


def _take_over(record: IdempotencyRecord, *, fingerprint: str, method: str, path: str, now: datetime) -> bool:
    """Reset an expired or abandoned record for a new request, if no one else did so first."""
    fresh = {
        "fingerprint": fingerprint,
        "request_method": method,
        "request_path": path[:2000],
        "state": IdempotencyRecord.State.IN_PROGRESS,
        "status_code": None,
        "response_body": None,
        "response_headers": {},
        "locked_at": now,
        "completed_at": None,
        "expires_at": now + IDEMPOTENCY_TTL,
    }
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, state=record.state, locked_at=record.locked_at, expires_at=record.expires_at
    ).update(**fresh)
    if taken:
        for name, value in fresh.items():
            setattr(record, name, value)
    return bool(taken)


def begin_idempotent_request(
    *, api_key_id: int, key: str, fingerprint: str, method: str, path: str, now: datetime | None = None
) -> Claimed | Replay:
    """Claim ``key`` for this request, or say why not (Replay, or one of the two 409 errors)."""
    validate_idempotency_key(key)
    now = now or timezone.now()
    for _ in range(3):  # the row may vanish (released, purged) between our insert and our read
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key_id=api_key_id,
                    key=key,
                    fingerprint=fingerprint,
                    request_method=method,
                    request_path=path[:2000],
                    locked_at=now,
                    expires_at=now + IDEMPOTENCY_TTL,
                )
            return Claimed(record)
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(api_key_id=api_key_id, key=key).first()
        if record is None:
            continue
        if record.expires_at <= now:
            if _take_over(record, fingerprint=fingerprint, method=method, path=path, now=now):
                return Claimed(record)
            continue
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"The {IDEMPOTENCY_HEADER} {key!r} was already used with a different request "
                f"({record.request_method} {record.request_path}). Use a new key for a new request."
            )
        if record.state == IdempotencyRecord.State.COMPLETED:
            return Replay(record)
        if record.locked_at <= now - IN_FLIGHT_TIMEOUT:
            if _take_over(record, fingerprint=fingerprint, method=method, path=path, now=now):
                return Claimed(record)
            continue
        raise IdempotencyRequestInProgress(
            f"A request with the {IDEMPOTENCY_HEADER} {key!r} is still being carried out. "
            "Retry in a second to get its answer."
        )
    raise IdempotencyRequestInProgress(f"The {IDEMPOTENCY_HEADER} {key!r} is contended; retry in a second.")


def is_final_answer(status_code: int, *, error_code: str | None = None) -> bool:
    """Answers worth replaying: 2xx and 4xx, except 429 and "still in progress" (both mean: try again)."""
    if error_code == IdempotencyRequestInProgress.code:
        return False
    return 200 <= status_code < 500 and status_code != 429


@transaction.atomic
def complete_idempotent_request(
    *, record: IdempotencyRecord, status_code: int, body: bytes, headers: dict[str, str]
) -> bool:
    """Store the final answer. False if the claim was lost (taken over after :data:`IN_FLIGHT_TIMEOUT`)."""
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    return bool(
        IdempotencyRecord.objects.filter(
            pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS, locked_at=record.locked_at
        ).update(
            state=IdempotencyRecord.State.COMPLETED,
            status_code=status_code,
            response_body=body,
            response_headers=stored,
            completed_at=timezone.now(),
        )
    )


@transaction.atomic
def release_idempotency_key(*, record: IdempotencyRecord) -> bool:
    """Give the key back after a failure so that a retry runs (only if this request still holds it)."""
    deleted, _ = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS, locked_at=record.locked_at
    ).delete()
    return bool(deleted)


@transaction.atomic
def purge_expired_idempotency_records(*, now: datetime | None = None) -> int:
    """Delete the current schema's records older than the TTL; returns how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


@shared_task(name="gateway.idempotency.purge_expired", ignore_result=True)
def purge_expired(schema_name: str | None = None) -> int:
    """Beat task: purge expired records in one channel's schema, or (no argument) in every channel's."""
    if schema_name:
        schemas = [schema_name]
    else:
        schemas = list(
            get_tenant_model()
            .objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
            .order_by("schema_name")
            .values_list("schema_name", flat=True)
        )
    total = 0
    for schema in schemas:
        if schema == settings.PUBLIC_SCHEMA_NAME:
            raise ValueError("idempotency records live in channel schemas, not in the public one")
        with schema_context(schema):
            total += purge_expired_idempotency_records()
    return total
