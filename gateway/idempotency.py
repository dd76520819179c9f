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
exception) the key is released so a retry can run. Records expire after :data:`IDEMPOTENCY_TTL`.

The claim must commit on its own, before the work starts (do not run requests under
``ATOMIC_REQUESTS``): otherwise a concurrent duplicate waits on the row lock instead of getting a 409.

Owner locks: a claim lives as long as its owner
------------------------------------------------
"Still running" must mean that a live process is carrying the request out, not merely that a row says
``in_progress``: a web worker killed mid-request (SIGKILL, OOM, a lost connection) never completes or
releases its claim. So the owner of a claim holds a PostgreSQL **session-level advisory lock** derived
from ``(api_key_id, key)`` (:func:`owner_lock_key`) for as long as it works:

- it takes the lock (``pg_try_advisory_lock``) *before* it inserts or takes over the row, so a claim is
  never visible without its owner's lock;
- a request that finds the key ``in_progress`` and can take the lock knows the owner is gone (its
  connection closed, and PostgreSQL released the lock with it) and takes the claim over at once; one
  that cannot take it answers 409 ``idempotency_request_in_progress`` with ``Retry-After``;
- the owner releases the lock on every exit: :func:`complete_idempotent_request` and
  :func:`release_idempotency_key`, one of which the edge calls on every path (answer stored, error,
  exception, lost claim), release it even when their own statement fails. A replay or a refusal
  releases the lock before it returns.

The lock is held on a **connection of its own** (one per thread, opened on first use, autocommit), not
on Django's request connection: Django's persistent connections (``CONN_MAX_AGE``) outlive the request
and would keep a forgotten lock, ``close_old_connections`` or an error recovery that closes the request
connection would drop it mid-request, and a rolled-back transaction neither takes nor gives back a
session lock. On its own connection the lock is exactly as long-lived as the process (or the claim,
whichever ends first). The connection sets TCP keepalives on the server side, so even a host that
vanishes without closing its sockets loses its locks within about half a minute. The claim itself is
still written through Django's connection and committed on its own, as before.

The time lease stays as a backstop: an ``in_progress`` claim older than :data:`IN_FLIGHT_TIMEOUT` is
taken over even when its lock is held (a stuck owner, or a lock that was not released). Whoever loses a
claim loses its work too: the owner's answer is stored only if it still holds the claim
(``locked_at`` unchanged) in the same transaction as its work, so a takeover can never make a request
run twice.

**Connection poolers.** Session locks need a session: the lock connection must reach PostgreSQL
directly or through a *session*-mode pool. Behind a *transaction*-mode pooler (PgBouncer
``pool_mode = transaction``), each statement may run on another server connection: an unlock can miss
its lock (which then stays held on a pooled server connection, so retries get 409 until the
:data:`IN_FLIGHT_TIMEOUT` lease ends), and a try-lock can land on the server connection that holds it
and succeed (advisory locks are re-entrant), so a retry takes over a live claim (the owner's work is
then rolled back and it answers 409; the work is still done once). To keep owner locks exact there,
point ``settings.IDEMPOTENCY_LOCK_DATABASE`` (a ``DATABASES`` alias, default ``"default"``) at a direct
connection; ``settings.IDEMPOTENCY_OWNER_LOCKS = False`` turns owner locks off (only the lease remains).
A process that forks (gunicorn's master) must not hold a lock connection; lock connections are opened
lazily by the threads that serve requests, and a child never uses one it inherited.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from celery import shared_task
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.utils import OperationalError
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from gateway.edge.models import IdempotencyRecord
from kernel import faults
from kernel.db import raw_cursor
from kernel.errors import ApplicationError

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
    what_to_do = "`Idempotency-Key` must be 1-255 printable ASCII characters."


class IdempotencyKeyRequired(ApplicationError):
    """For requests that move money, where a retry without a key could do it twice."""

    code = "idempotency_key_required"
    http_status = 400
    title = "Idempotency-Key required"
    what_to_do = "This request moves money: send an `Idempotency-Key` and reuse it to retry."


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    http_status = 409
    title = "Idempotency-Key already used for another request"
    what_to_do = "This key was used for a different request; use a new key for a new request."


class IdempotencyRequestInProgress(ApplicationError):
    code = "idempotency_request_in_progress"
    http_status = 409
    title = "A request with this Idempotency-Key is still in progress"
    what_to_do = "The first request with this key is still running; retry after `Retry-After`."
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


# --------------------------------------------------------------------------- owner locks (see the docstring)

# Server-side TCP keepalives for the lock connection: a peer that vanished without closing its socket
# is noticed (and its locks released) after about idle + interval x count seconds. Ignored on unix sockets.
_KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}
# Django's own connection parameters that psycopg.connect must not get for a plain lock connection.
LOCK_APPLICATION_NAME = "gateway-idempotency-locks"
_DJANGO_ONLY_PARAMS = ("cursor_factory", "context", "prepare_threshold", "server_side_binding")


def owner_lock_key(*, api_key_id: int, key: str) -> int:
    """The advisory lock (a signed 64-bit number) that the owner of ``(api_key_id, key)`` holds.

    API key ids are unique across channels (one public table), so one number space serves every channel
    schema. Two claims whose numbers collide (odds 2**-64 per pair) only make each other's retries wait
    for the owner to finish, as a live owner would.
    """
    digest = hashlib.blake2b(f"{api_key_id}\n{key}".encode(), digest_size=8, person=b"idem-owner").digest()
    return int.from_bytes(digest, "big", signed=True)


def owner_locks_enabled() -> bool:
    return bool(getattr(settings, "IDEMPOTENCY_OWNER_LOCKS", True))


class _LockConnection:
    """One thread's connection for owner locks, and the locks it holds (closed when the thread ends)."""

    def __init__(self) -> None:
        self.conn: psycopg.Connection | None = None
        self.pid = os.getpid()
        self.held: set[int] = set()

    def close(self) -> None:
        """Drop the connection (PostgreSQL releases every lock on it) and forget what it held."""
        conn, self.conn = self.conn, None
        self.held.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def __del__(self) -> None:
        if self.pid == os.getpid():  # never close a connection inherited through fork: it is the parent's
            self.close()


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.locks = _LockConnection()


_state = _ThreadState()
_INHERITED: list[_LockConnection] = []  # a forked child's copies of its parent's connections, never used


def _lock_connection() -> _LockConnection:
    locks = _state.locks
    if locks.pid != os.getpid():
        _INHERITED.append(locks)  # kept referenced: finalizing it would end the parent's session
        locks = _state.locks = _LockConnection()
    return locks


def _connect() -> psycopg.Connection:
    alias = getattr(settings, "IDEMPOTENCY_LOCK_DATABASE", DEFAULT_DB_ALIAS)
    params = connections[alias].get_connection_params()
    for name in _DJANGO_ONLY_PARAMS:
        params.pop(name, None)
    params.setdefault("application_name", LOCK_APPLICATION_NAME)  # how operators (and tests) find it
    conn = psycopg.connect(**params, autocommit=True)
    with contextlib.suppress(psycopg.Error):  # best effort: a pooler may refuse these
        conn.execute(
            "SELECT " + ", ".join(f"set_config('{name}', %s, false)" for name in _KEEPALIVES),
            list(_KEEPALIVES.values()),
        )
    return conn


def _lock_query(sql: str, lock: int) -> bool:
    """Run a one-value lock query on this thread's lock connection; reconnect once if it was broken."""
    locks = _lock_connection()
    for attempt in (1, 2):
        reused = locks.conn is not None
        try:
            if locks.conn is None:
                locks.conn = _connect()
            row = locks.conn.execute(sql, [lock]).fetchone()
            return bool(row and row[0])
        except psycopg.Error as exc:
            locks.close()  # whatever it held went with it
            if attempt == 2 or not reused:
                raise OperationalError(f"the idempotency lock connection failed: {type(exc).__name__}") from exc
    raise AssertionError("unreachable")


def _take_owner_lock(lock: int) -> bool:
    """True if this thread now holds ``lock``; False if a live owner holds it (another process, another
    thread, or this very thread for an earlier claim: advisory locks are re-entrant, ours are not)."""
    locks = _lock_connection()
    if lock in locks.held:
        return False
    if not _lock_query("SELECT pg_try_advisory_lock(%s)", lock):
        return False
    locks.held.add(lock)
    return True


def _release_owner_lock(lock: int) -> None:
    """Give ``lock`` back if this thread holds it. Never raises: on any failure the connection is closed,
    which releases the lock just as well."""
    locks = _lock_connection()
    if lock not in locks.held:
        return
    locks.held.discard(lock)
    try:
        if locks.conn is not None:
            locks.conn.execute("SELECT pg_advisory_unlock(%s)", [lock])
    except Exception:  # noqa: BLE001 - closing the connection releases the lock too
        locks.close()


def release_owner_locks() -> None:
    """Close this thread's lock connection, releasing every owner lock it holds (tests; shutdown)."""
    _lock_connection().close()


def owner_locks_held() -> frozenset[int]:
    """The owner locks this thread holds (for tests and diagnostics)."""
    return frozenset(_lock_connection().held)


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: run it, then complete (:func:`complete_idempotent_request`) or release it.

    ``owner_lock`` is the advisory lock this thread holds for the claim (None when owner locks are off,
    or when the claim was taken over by the time lease from an owner that still holds its lock)."""

    record: IdempotencyRecord
    owner_lock: int | None = None


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


# Every stamp request writes its claim and then its answer: as plain statements, not through the ORM's
# save and update machinery, which cost about as much CPU as the stamp's whole intake call
# (``stamping.intake``) did. The columns and values are the model's; its tests hold them to it. Both
# are prepared (``kernel.db.raw_cursor``): parsed and planned once per connection, the answer's body
# sent as a binary parameter, where Django's cursor sent it as a hex literal in the query text.
_INSERT_CLAIM = (
    "INSERT INTO edge_idempotencyrecord (api_key_id, key, fingerprint, request_method, request_path, state, "
    "status_code, response_body, response_headers, created_at, locked_at, completed_at, expires_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, NULL, NULL, '{}'::jsonb, %s, %s, NULL, %s) RETURNING id"
)
# A claim made on its own (autocommit) commits without waiting for its WAL flush: set_config(..., true)
# lasts to the end of the statement's transaction. During a surge a flush waits behind the surge's
# uploads (each scan is about 800 KB of WAL), and the claim of a quiet channel's request waited with
# them: 46-65 ms of its slowest requests in bench/surge.py. Nothing depends on the claim being durable
# on its own: the work and the answer commit together afterwards, waiting for their flush, which
# flushes the claim before them; a claim lost in a crash leaves no work behind, and the retry claims
# the key again (as it takes over a claim whose owner's connection died with the server). Inside a
# caller's transaction the setting would outlive the claim, so there the claim commits as everything does.
_ASYNC_CLAIM = ", set_config('synchronous_commit', 'off', true)"
_COMPLETE = (
    "UPDATE edge_idempotencyrecord SET state = %s, status_code = %s, response_body = %s, response_headers = %s::jsonb, "
    "completed_at = %s WHERE id = %s AND state = %s AND locked_at = %s"
)


def _in_schema(sql: str) -> str:
    """``sql`` with its table qualified by the current schema (``kernel.db.raw_cursor`` sets no
    search_path)."""
    return _qualified(sql, connections[DEFAULT_DB_ALIAS].schema_name)


@functools.lru_cache(maxsize=1024)
def _qualified(sql: str, schema: str) -> str:
    table = f"{connections[DEFAULT_DB_ALIAS].ops.quote_name(schema)}.{IdempotencyRecord._meta.db_table}"
    return sql.replace(f" {IdempotencyRecord._meta.db_table} ", f" {table} ", 1)


def _insert_claim(
    *, api_key_id: int, key: str, fingerprint: str, method: str, path: str, now: datetime
) -> IdempotencyRecord:
    """The claim's row, as ``IdempotencyRecord.objects.create`` would write it, in one statement."""
    record = IdempotencyRecord(
        api_key_id=api_key_id,
        key=key,
        fingerprint=fingerprint,
        request_method=method,
        request_path=path[:2000],
        state=IdempotencyRecord.State.IN_PROGRESS,
        response_headers={},
        created_at=now,
        locked_at=now,
        expires_at=now + IDEMPOTENCY_TTL,
    )
    values = (
        api_key_id, key, fingerprint, method, record.request_path, IdempotencyRecord.State.IN_PROGRESS.value, now,
        now, record.expires_at,
    )  # fmt: skip
    connection = connections[DEFAULT_DB_ALIAS]
    sql = _in_schema(_INSERT_CLAIM if connection.in_atomic_block else _INSERT_CLAIM + _ASYNC_CLAIM)
    with raw_cursor() as cursor:
        cursor.execute(sql, values, prepare=True)
        record.pk = cursor.fetchone()[0]
    record._state.adding = False
    return record


def begin_idempotent_request(
    *, api_key_id: int, key: str, fingerprint: str, method: str, path: str, now: datetime | None = None
) -> Claimed | Replay:
    """Claim ``key`` for this request, or say why not (Replay, or one of the two 409 errors).

    With owner locks on, the owner's lock is taken first: holding it means no live process is carrying
    out this key, so a claim found in flight is abandoned and taken over at once; not getting it means
    a live owner is at work, and this request only reads (replay, reuse, or 409)."""
    validate_idempotency_key(key)
    now = now or timezone.now()
    lock = owner_lock_key(api_key_id=api_key_id, key=key) if owner_locks_enabled() else None
    owned = lock is not None and _take_owner_lock(lock)
    outcome: Claimed | Replay | None = None
    try:
        outcome = _claim(
            api_key_id=api_key_id,
            key=key,
            fingerprint=fingerprint,
            method=method,
            path=path,
            now=now,
            may_insert=lock is None or owned,
            owner_gone=owned,
        )
    finally:
        if owned and not isinstance(outcome, Claimed):
            _release_owner_lock(lock)  # a replay, a refusal or an exception: this request owns nothing
    if isinstance(outcome, Claimed) and owned:
        return Claimed(outcome.record, owner_lock=lock)
    return outcome


def _claim(
    *,
    api_key_id: int,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    now: datetime,
    may_insert: bool,
    owner_gone: bool,
) -> Claimed | Replay:
    # Outside a transaction the insert is its own (one round trip, where BEGIN, INSERT and COMMIT were
    # three: on a busy machine each round trip is a wait for the CPU); a unique violation then leaves
    # the connection as it was. Inside one, a savepoint keeps the violation from aborting it.
    isolate = transaction.atomic if connections[DEFAULT_DB_ALIAS].in_atomic_block else contextlib.nullcontext
    for _ in range(3):  # the row may vanish (released, purged) between our insert and our read
        if may_insert:
            try:
                with isolate():
                    record = _insert_claim(
                        api_key_id=api_key_id, key=key, fingerprint=fingerprint, method=method, path=path, now=now
                    )
                return Claimed(record)
            except IntegrityError:
                pass
        record = IdempotencyRecord.objects.filter(api_key_id=api_key_id, key=key).first()
        if record is None:
            if may_insert:
                continue
            break  # a live owner holds the lock and has not written its claim yet (or just released it)
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
        # In flight. Its owner is gone if we hold its lock (its connection closed); the time lease is
        # the backstop for an owner that still holds its lock but never finishes.
        if owner_gone or record.locked_at <= now - IN_FLIGHT_TIMEOUT:
            if _take_over(record, fingerprint=fingerprint, method=method, path=path, now=now):
                return Claimed(record)
            continue
        break
    raise IdempotencyRequestInProgress(
        f"A request with the {IDEMPOTENCY_HEADER} {key!r} is still being carried out. "
        "Retry in a second to get its answer."
    )


def is_final_answer(status_code: int, *, error_code: str | None = None) -> bool:
    """Answers worth replaying: 2xx and 4xx, except 429 and "still in progress" (both mean: try again)."""
    if error_code == IdempotencyRequestInProgress.code:
        return False
    return 200 <= status_code < 500 and status_code != 429


def _record_lock(record: IdempotencyRecord) -> int | None:
    return owner_lock_key(api_key_id=record.api_key_id, key=record.key) if owner_locks_enabled() else None


def complete_idempotent_request(
    *, record: IdempotencyRecord, status_code: int, body: bytes, headers: dict[str, str]
) -> bool:
    """Store the final answer. False if the claim was lost (taken over by a retry). Releases the owner
    lock either way, before the caller's transaction commits: a retry that takes the lock in between
    finds the row locked by this update, waits for the commit, and then replays the stored answer."""
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    try:
        faults.point("idempotency.before_complete")  # the work is written, not committed; the claim in flight
        # No savepoint of its own: inside the caller's transaction a failed update fails the whole of it,
        # which is what must happen (the answer and the work commit together or not at all).
        values = (
            IdempotencyRecord.State.COMPLETED.value, status_code, body, json.dumps(stored), timezone.now(),
            record.pk, IdempotencyRecord.State.IN_PROGRESS.value, record.locked_at,
        )  # fmt: skip
        with transaction.atomic(savepoint=False), raw_cursor() as cursor:
            cursor.execute(_in_schema(_COMPLETE), values, prepare=True)
            return cursor.rowcount == 1
    finally:
        if (lock := _record_lock(record)) is not None:
            _release_owner_lock(lock)


def release_idempotency_key(*, record: IdempotencyRecord) -> bool:
    """Give the key back after a failure so that a retry runs (only if this request still holds it).
    The owner lock is released even if the delete fails (the database may be what failed)."""
    try:
        with transaction.atomic():
            deleted, _ = IdempotencyRecord.objects.filter(
                pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS, locked_at=record.locked_at
            ).delete()
            return bool(deleted)
    finally:
        if (lock := _record_lock(record)) is not None:
            _release_owner_lock(lock)


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
