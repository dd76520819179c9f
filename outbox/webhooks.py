"""Outgoing webhooks: signed, retried, and never lost (a transactional outbox in the channel's schema).

- :func:`enqueue_event` writes one :class:`~gateway.edge.models.WebhookDelivery` row per subscribed
  endpoint *in the caller's transaction*: if the business change rolls back, so does the event. After
  commit a Celery task (:func:`deliver`) sends it; the beat task :func:`sweep_all` re-sends whatever is
  due, so a lost task, a broker outage or a dead worker only delays a delivery.
- Every attempt takes a short lease on the row (``next_attempt_at`` moves :data:`LEASE` ahead) before
  the HTTP call, so two tasks for one row never send it at the same time; the call itself runs outside
  any database transaction.
- A 2xx answer is success. Anything else (non-2xx, redirect, timeout, refused connection) is a failure,
  retried with exponential backoff and jitter until :data:`MAX_ATTEMPTS`, then ``failed``.
  :func:`replay_delivery` starts a fresh series for any delivery.
- Each body is signed: ``Emeterai-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
  Receivers verify it as ``docs/webhooks.md`` shows; :func:`verify_signature` is our own reference.
- Deliveries go to public addresses only (no loopback, private, link-local - cloud metadata -, shared or
  reserved ranges): an endpoint URL naming such an address is refused when it is registered, and every
  attempt checks the addresses the name resolves to *when it connects*, so a name that later resolves
  inward (DNS rebinding) reaches nothing. ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` lifts this for
  development and tests, where receivers listen on 127.0.0.1.

Tasks take the schema name and ids, enter the schema explicitly, and refuse to run without one.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from functools import lru_cache, partial
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from kernel import metrics
from kernel.db import raw_cursor
from kernel.errors import ApplicationError, NotFound
from kernel.timestamps import utc_timestamp
from outbox.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Emeterai-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
LEASE = timedelta(seconds=60)  # longer than REQUEST_TIMEOUT_SECONDS, so a lease outlives its attempt
REQUEST_TIMEOUT_SECONDS = 10
ATTEMPT_LOG_LIMIT = 50
SWEEP_BATCH = 500
USER_AGENT = "e-Meterai-Gateway-Webhooks/1"
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class InvalidWebhookEndpoint(ApplicationError):
    code = "invalid_webhook_endpoint"
    http_status = 400
    title = "Invalid webhook endpoint"
    what_to_do = (
        "The webhook URL or event list is not acceptable (a public https or http address, known "
        "event types); see `webhooks.md`."
    )


class InvalidWebhookEvent(ApplicationError):
    code = "invalid_webhook_event"
    http_status = 400
    title = "Invalid webhook event"
    what_to_do = "Unknown event type for a webhook endpoint; see `webhooks.md` for the list."


# --------------------------------------------------------------------------- signing


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """The ``Emeterai-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    *, secret: str, header: str, body: bytes, tolerance: int = SIGNATURE_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` and its time is within ``tolerance`` seconds."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


# --------------------------------------------------------------------------- services


def _current_channel_schema() -> str:
    schema = connection.schema_name
    if not schema or schema == settings.PUBLIC_SCHEMA_NAME:
        raise RuntimeError("webhooks belong to a channel: enter the channel's schema first")
    return schema


def _require_channel_schema(schema_name: str | None) -> str:
    if not schema_name or schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise ValueError("a webhook task needs the schema name of a channel")
    return schema_name


def _check_scheme(url: str) -> str:
    """The URL's host; refused unless it is an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookEndpoint("A webhook URL must be an absolute http:// or https:// address.")
    return parts.hostname


def _validate_url(url: str) -> None:
    """For a new endpoint: http(s), and not an address deliveries would refuse anyway."""
    host = _check_scheme(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if (literal is not None and not _public(literal)) or (
        not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES and (host == "localhost" or host.endswith(".localhost"))
    ):
        raise InvalidWebhookEndpoint(
            f"Webhooks are delivered over the internet: {host} is a local or private address. "
            "Give a public host name or address of your receiver."
        )


# IPv6 ranges that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix (RFC 6052),
# SIIT's IPv4-translated addresses (RFC 2765) and the deprecated IPv4-compatible ones. A packet sent to
# one of them may be delivered to that IPv4 address, so it is that address which must be public.
_IPV4_IN_LOW_BITS = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
# NAT64's local-use prefix (RFC 8215): the operator chooses where in it the IPv4 address sits, so it
# cannot be decoded; it is a translator inside some network, never a public receiver.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _ipv4_behind(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, IPv4-translated, IPv4-compatible or NAT64 (64:ff9b::/96)
    address stands for: the one a packet to it reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in _IPV4_IN_LOW_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _tunnel_ends(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses inside a 6to4 (2002::/16) or Teredo (2001::/32: server, and client stored
    XOR-ed with 0xffffffff) address."""
    ends = [address.sixtofour] if address.sixtofour is not None else []
    return ends + list(address.teredo or ())


def _public_v4(address: ipaddress.IPv4Address) -> bool:
    return address.is_global and not address.is_multicast


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a delivery may connect to ``address`` (any address when private ones are allowed).
    An IPv6 address that carries an IPv4 one is public only if that IPv4 address is too."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return True
    if address.version == 4:
        return _public_v4(address)
    if address.is_multicast or address in _LOCAL_NAT64:
        return False
    behind = _ipv4_behind(address)
    if behind is not None:  # what the packet reaches decides (::ffff:8.8.8.8 is not "global" itself)
        return _public_v4(behind)
    return address.is_global and all(_public_v4(end) for end in _tunnel_ends(address))


def _connect_public(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):  # noqa: SLF001
    """``socket.create_connection`` to a public address of ``host`` only: the check is made on the
    addresses the name resolves to now, at connect time, so DNS cannot point a delivery inward."""
    host, port = address
    refused: list[str] = []
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if not _public(ipaddress.ip_address(sockaddr[0].split("%")[0])):
            refused.append(sockaddr[0])
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # noqa: SLF001
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is not None:
        raise last_error
    raise OSError(f"{host} resolves only to non-public addresses ({', '.join(refused)}); nothing was sent")


@transaction.atomic
def create_webhook_endpoint(*, url: str, events: list[str], description: str = "") -> WebhookEndpoint:
    """A new endpoint in the current channel with a fresh signing secret. ``events=["*"]`` is every event."""
    _current_channel_schema()
    _validate_url(url)
    for event_type in events:
        if event_type != "*" and not _EVENT_TYPE.match(event_type):
            raise InvalidWebhookEvent(f"{event_type!r} is not an event type (e.g. 'order.paid') nor '*'.")
    return WebhookEndpoint.objects.create(
        url=url, events=sorted(set(events)), description=description, secret=f"whsec_{secrets.token_urlsafe(32)}"
    )


@lru_cache(maxsize=256)
def _subscribed_sql(schema: str) -> str:
    quoted = connection.ops.quote_name(schema)
    return (
        f"SELECT id FROM {quoted}.{WebhookEndpoint._meta.db_table} WHERE active"  # noqa: S608 - the model's own table
        " AND (events @> ARRAY[%s::varchar] OR events @> ARRAY['*'::varchar]) ORDER BY id"
    )


def _subscribed_endpoint_ids(schema: str, event_type: str) -> list[int]:
    """The channel's active endpoints that want ``event_type``. One fixed statement, prepared: every
    stamp asks this inside its recording transaction, and building the ORM query cost more CPU than
    PostgreSQL's answer (then parsing and planning it did)."""
    with raw_cursor() as cursor:
        cursor.execute(_subscribed_sql(schema), [event_type], prepare=True)
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic(savepoint=False)  # inside a caller's transaction: no savepoint round trips; its
def enqueue_event(*, event_type: str, payload: dict) -> list[WebhookDelivery]:  # failure fails the caller
    """Record ``event_type`` for every active endpoint that wants it, in the current transaction; the
    sending starts after commit. Returns the delivery rows (none if no endpoint subscribes)."""
    schema = _current_channel_schema()
    event_id, body = new_event(event_type, payload)
    endpoint_ids = _subscribed_endpoint_ids(schema, event_type)
    if not endpoint_ids:
        return []
    data, now = json.loads(body), timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint_id=endpoint_id, event_id=event_id, event_type=event_type, payload=data, next_attempt_at=now
        )
        for endpoint_id in endpoint_ids
    )
    deliveries_recorded([delivery.pk for delivery in deliveries])
    return deliveries


def new_event(event_type: str, payload: dict) -> tuple[str, str]:
    """A new event's id and its payload as the JSON text stored (dates, decimals, UUIDs as JSON sends
    them); refuses a malformed event type. For :func:`enqueue_event`, and for a caller that writes the
    deliveries in SQL of its own (``outbox.sql``), then hands their ids to :func:`deliveries_recorded`."""
    if not _EVENT_TYPE.match(event_type):
        raise InvalidWebhookEvent(f"{event_type!r} is not an event type (e.g. 'order.paid').")
    return f"evt_{secrets.token_hex(12)}", json.dumps(payload, cls=DjangoJSONEncoder)


def deliveries_recorded(delivery_ids: list[int]) -> None:
    """Send these deliveries of the current channel once the transaction that wrote them commits (at
    once outside a transaction)."""
    schema = _current_channel_schema()
    for delivery_id in delivery_ids:
        # robust: a broker outage must not fail the committed business request; the sweeper sends it later
        transaction.on_commit(partial(_schedule, schema, delivery_id), robust=True)


CALLBACK_DESCRIPTION = "callback (one-off deliveries to a URL a request named)"


@transaction.atomic
def enqueue_callback(*, url: str, event_type: str, payload: dict) -> WebhookDelivery:
    """Send ``payload`` as the JSON body to ``url`` once, in the current transaction: a callback URL a
    request named (the compat facade's batch ``return_url``), with everything a webhook has - the
    address check, the signature, retries with backoff, the sweeper - but no event envelope. The
    URL's endpoint subscribes to no event, so ``enqueue_event`` never sends it anything else."""
    schema = _current_channel_schema()
    _validate_url(url)
    if not _EVENT_TYPE.match(event_type):
        raise InvalidWebhookEvent(f"{event_type!r} is not an event type (e.g. 'order.paid').")
    endpoint = WebhookEndpoint.objects.filter(url=url, events=[], description=CALLBACK_DESCRIPTION).first()
    if endpoint is None:
        endpoint = WebhookEndpoint.objects.create(
            url=url, events=[], description=CALLBACK_DESCRIPTION, secret=f"whsec_{secrets.token_urlsafe(32)}"
        )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=f"evt_{secrets.token_hex(12)}",
        event_type=event_type,
        payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
        next_attempt_at=timezone.now(),
        bare=True,
    )
    transaction.on_commit(partial(_schedule, schema, delivery.pk), robust=True)
    return delivery


def _schedule(schema_name: str, delivery_id: int) -> None:
    deliver.delay(schema_name=schema_name, delivery_id=delivery_id)


@transaction.atomic
def replay_delivery(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again (whatever its status), with a fresh series of :data:`MAX_ATTEMPTS`; the
    attempt log keeps the earlier ones. The receiver sees the same event id."""
    schema = _current_channel_schema()
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id} in this channel.")
    now = timezone.now()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.attempt_count = 0
    delivery.next_attempt_at = now
    delivery.attempts = [*delivery.attempts, {"replayed_at": now.isoformat()}][-ATTEMPT_LOG_LIMIT:]
    delivery.save(update_fields=["status", "attempt_count", "next_attempt_at", "attempts"])
    transaction.on_commit(partial(_schedule, schema, delivery.pk), robust=True)
    return delivery


def backoff_delay(attempt: int) -> timedelta:
    """Wait after failed attempt number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped, with
    jitter drawn uniformly from its upper half so that receivers coming back are not hit all at once."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    ceiling_ms = int(ceiling.total_seconds() * 1000)
    return timedelta(milliseconds=ceiling_ms // 2 + secrets.randbelow(ceiling_ms // 2 + 1))


def build_body(delivery: WebhookDelivery) -> bytes:
    if delivery.bare:
        return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    event = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "created": utc_timestamp(delivery.created_at),
        "data": delivery.payload,
    }
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is an answer like any other non-2xx: a failed attempt


def _guarded(connection_class: type[http.client.HTTPConnection]):
    def make(host, **kwargs):
        conn = connection_class(host, **kwargs)
        conn._create_connection = _connect_public  # noqa: SLF001 - http.client's own hook for this
        return conn

    return make


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_guarded(http.client.HTTPConnection), req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_guarded(http.client.HTTPSConnection), req, context=self._context)


_opener = urllib.request.build_opener(_NoRedirects, _PublicHTTPHandler, _PublicHTTPSHandler)


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST once; (status code or None, error text or ""). Where it may connect is checked at connect
    time (:func:`_connect_public`)."""
    try:
        _check_scheme(url)
    except InvalidWebhookEndpoint as exc:
        return None, exc.message
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    try:
        with _opener.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        with exc:
            snippet = exc.read(200).decode("utf-8", "replace")
        return exc.code, f"HTTP {exc.code}: {snippet}".strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"[:500]


def attempt_delivery(*, delivery_id: int) -> str:
    """One attempt at a due delivery in the current schema. Safe to run twice, or concurrently: the
    attempt leases the row first. Returns ``succeeded``, ``retry``, ``failed``, ``skipped`` (not due, or
    leased by another attempt) or ``superseded`` (replayed while this attempt was in flight)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return "skipped"  # done, failed, leased by another attempt, or not due yet
        delivery.attempt_count += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempt_count", "next_attempt_at"])
    attempt = delivery.attempt_count
    endpoint = delivery.endpoint

    started = time.monotonic()
    if endpoint.active:
        body = build_body(delivery)
        sent_at = int(time.time())
        code, error = _post(
            url=endpoint.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Emeterai-Event-Id": delivery.event_id,
                "Emeterai-Event-Type": delivery.event_type,
                "Emeterai-Delivery-Id": str(delivery.pk),
                "Emeterai-Delivery-Attempt": str(attempt),
                SIGNATURE_HEADER: sign(secret=endpoint.secret, timestamp=sent_at, body=body),
            },
        )
    else:
        code, error = None, "endpoint disabled"
    duration_ms = round((time.monotonic() - started) * 1000)
    succeeded = code is not None and 200 <= code < 300
    return _record_attempt(
        delivery_id=delivery.pk,
        attempt=attempt,
        code=code,
        error="" if succeeded else (error or f"HTTP {code}"),
        duration_ms=duration_ms,
        give_up=not endpoint.active,
    )


@transaction.atomic
def _record_attempt(
    *, delivery_id: int, attempt: int, code: int | None, error: str, duration_ms: int, give_up: bool
) -> str:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    now = timezone.now()
    entry = {"attempt": attempt, "at": now.isoformat(), "response_code": code, "error": error, "ms": duration_ms}
    delivery.attempts = [*delivery.attempts, entry][-ATTEMPT_LOG_LIMIT:]
    delivery.last_response_code = code
    delivery.last_error = error
    fields = ["attempts", "last_response_code", "last_error"]
    if delivery.attempt_count != attempt or delivery.status != WebhookDelivery.Status.PENDING:
        delivery.save(update_fields=fields)  # replayed meanwhile: log the attempt, leave the new series alone
        return "superseded"
    if not error:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        outcome = "succeeded"
    elif give_up or attempt >= MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
        outcome = "failed"
        logger.warning(
            "webhook delivery failed for good",
            extra={"delivery_id": delivery.pk, "event_id": delivery.event_id, "attempts": attempt},
        )
    else:
        delivery.next_attempt_at = now + backoff_delay(attempt)
        outcome = "retry"
    delivery.save(update_fields=[*fields, "status", "delivered_at", "next_attempt_at"])
    metrics.WEBHOOK_ATTEMPTS.labels(metrics.channel_label(connection.schema_name), outcome).inc()
    return outcome


def due_delivery_ids(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now or timezone.now()
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


# --------------------------------------------------------------------------- tasks


@shared_task(name="gateway.webhooks.deliver", ignore_result=True, acks_late=True)
def deliver(schema_name: str, delivery_id: int) -> str:
    """Attempt one delivery (if it is due) in ``schema_name``."""
    with schema_context(_require_channel_schema(schema_name)):
        return attempt_delivery(delivery_id=delivery_id)


@shared_task(name="gateway.webhooks.sweep", ignore_result=True)
def sweep(schema_name: str) -> int:
    """Queue a delivery task for every due delivery of one channel; returns how many."""
    schema_name = _require_channel_schema(schema_name)
    with schema_context(schema_name):
        ids = due_delivery_ids()
    for delivery_id in ids:
        deliver.delay(schema_name=schema_name, delivery_id=delivery_id)
    return len(ids)


@shared_task(name="gateway.webhooks.sweep_all", ignore_result=True)
def sweep_all() -> int:
    """Beat task: one :func:`sweep` per channel."""
    schemas = list(
        get_tenant_model()
        .objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    for schema_name in schemas:
        sweep.delay(schema_name=schema_name)
    return len(schemas)
