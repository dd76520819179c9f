"""The ``simulator`` payment provider, for the demo and the tests.

It behaves like a real provider over real HTTP: its pay page (served at
``/pay/simulator/<order>`` on the channel host) lets a person pay or fail an order, and the
simulator then POSTs a signed webhook to the gateway, exactly as an outside provider would.

The pay page never makes that call itself: a request that waited on its own server would wait for a
free web worker, and when all are busy (a surge) it would wait on itself until it timed out. The page
queues the delivery (``billing.deliver_simulator_webhook``, after commit) and answers at once with a
"payment sent, waiting for confirmation" page that refreshes itself until the order is credited or the
payment failed. A Celery worker then POSTs the signed event to the gateway's own webhook endpoint, so
the real verification path runs, and retries with backoff while the gateway is unreachable or answers
5xx/429. The event and its payment reference are fixed when the page queues it (one reference per
order and outcome, :func:`payment_ref`), and only the signature is made afresh for each attempt: a
delivery repeated (a retry, a redelivered task, a second click on "Pay") is the same payment, which the
gateway credits once (it is idempotent by payment reference).

Signature: header ``Simulator-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``;
a signature older than five minutes is refused (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_tenants.utils import schema_context

from billing.providers.base import InvalidWebhookSignature, MalformedWebhook, PaymentEvent, ProviderRefund
from billing.retail.models import Order, Payment
from kernel.timestamps import utc_timestamp

SIGNATURE_HEADER = "Simulator-Signature"
TOLERANCE_SECONDS = 300


logger = logging.getLogger(__name__)


def _secret() -> bytes:
    return settings.PAYMENT_SIMULATOR_SECRET.encode()


def sign(body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(_secret(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(body: bytes, header: str, *, now: float | None = None) -> None:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidWebhookSignature("The webhook signature header is missing or malformed.") from None
    expected = hmac.new(_secret(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise InvalidWebhookSignature("The webhook signature does not match its body.")
    if abs((now or time.time()) - t) > TOLERANCE_SECONDS:
        raise InvalidWebhookSignature("The webhook signature is too old; the provider must sign it afresh.")


def payment_ref(*, order_id: str, succeeded: bool) -> str:
    """The simulator's payment reference for paying (or failing to pay) ``order_id``: the same every
    time, so paying an order twice on the pay page is one payment, credited once."""
    outcome = "succeeded" if succeeded else "failed"
    digest = hmac.new(_secret(), f"simpay:{order_id}:{outcome}".encode(), hashlib.sha256).hexdigest()
    return f"simpay_{digest[:20]}"


def event_body(*, order_id: str, amount_rupiah: int, succeeded: bool, payment_ref: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{secrets.token_hex(8)}",
            "type": "payment.succeeded" if succeeded else "payment.failed",
            "payment_ref": payment_ref or f"simpay_{secrets.token_hex(8)}",
            "order_id": order_id,
            "amount": amount_rupiah,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: bytes


def send_webhook(*, url: str, host: str, body: bytes, timeout: float = 10.0) -> WebhookAnswer:
    """POST a signed event to the gateway, as the real provider would (a real HTTP request). Called by
    the delivery task on a worker, never from a web request. Network failures raise ``OSError``."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the gateway's own webhook endpoint
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(body), "Host": host},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return WebhookAnswer(status=response.status, body=response.read())
    except urllib.error.HTTPError as exc:
        return WebhookAnswer(status=exc.code, body=exc.read())


class SimulatorProvider:
    name = "simulator"

    def payment_instructions(self, *, order, base_url: str) -> dict:
        return {
            "method": "simulator",
            "pay_url": f"{base_url.rstrip('/')}/pay/simulator/{order.id}",
            "amount_rupiah": order.total_rupiah,
            "expires_at": utc_timestamp(order.expires_at),
        }

    def parse_webhook(self, *, body: bytes, headers) -> PaymentEvent:
        verify(body, headers.get(SIGNATURE_HEADER, ""))
        try:
            data = json.loads(body)
            return PaymentEvent(
                provider_ref=str(data["payment_ref"]),
                order_id=str(data["order_id"]),
                succeeded=data["type"] == "payment.succeeded",
                amount_rupiah=int(data["amount"]),
                raw=data,
            )
        except (ValueError, KeyError, TypeError):
            raise MalformedWebhook("The webhook body is not a payment event this provider sends.") from None

    def refund(self, *, provider_ref: str, amount_rupiah: int, reference: str) -> ProviderRefund:
        return ProviderRefund(reference=f"simrfd_{hashlib.sha256(reference.encode()).hexdigest()[:16]}", succeeded=True)


# --------------------------------------------------------------------------- the pay page's side


def delivery_outcome_key(ref: str) -> str:
    """Cache key (per channel schema) where the delivery task notes how its last attempt went."""
    return f"billing:simulator:delivery:{ref}"


def send_payment(*, order, succeeded: bool, webhook_url: str, host: str, schema_name: str) -> str:
    """Queue the webhook for paying (or failing) ``order``, after the current transaction commits;
    returns its payment reference. Never waits for the gateway: a worker delivers it."""
    ref = payment_ref(order_id=order.pk, succeeded=succeeded)
    body = event_body(order_id=order.pk, amount_rupiah=order.total_rupiah, succeeded=succeeded, payment_ref=ref)
    transaction.on_commit(
        lambda: deliver_simulator_webhook.delay(
            schema_name=schema_name, url=webhook_url, host=host, body=body.decode(), payment_ref=ref
        )
    )
    return ref


@dataclass(frozen=True)
class PaymentProgress:
    """Where a payment sent from the pay page stands, as that page shows it."""

    state: str  # waiting | credited | failed | refunded | refused | closed
    done: bool  # False: the page refreshes itself
    message: str


def payment_progress(*, order, ref: str) -> PaymentProgress:
    """Read-only: what became of the payment ``ref`` of ``order`` (in the current channel schema)."""

    payment = Payment.objects.filter(provider=SimulatorProvider.name, provider_ref=ref, order=order).first()
    if order.status == Order.Status.CREDITED and (payment is None or payment.status == Payment.Status.SUCCEEDED):
        return PaymentProgress("credited", True, f"Payment confirmed: {order.quantity} e-Meterai credited.")
    if payment is not None:
        if payment.status == Payment.Status.FAILED:
            return PaymentProgress(
                "failed", True, "The payment failed. Nothing was charged; the order is closed: place a new order."
            )
        if payment.status in (Payment.Status.REFUND_PENDING, Payment.Status.REFUNDED):
            reason = payment.refund_reason or "refunded"
            return PaymentProgress(
                "refunded", True, f"The payment was not applied to the order and is refunded ({reason})."
            )
        if order.status == Order.Status.PAID:
            return PaymentProgress("waiting", False, "Payment received; crediting the order.")
    if order.status in (Order.Status.EXPIRED, Order.Status.REFUNDED):
        return PaymentProgress("closed", True, f"The order is {order.get_status_display().lower()}.")
    try:
        outcome = cache.get(delivery_outcome_key(ref))
    except Exception:  # noqa: BLE001 - only a hint for the page; the order's own state is what counts
        outcome = None
    if outcome and outcome.get("final") and not outcome.get("delivered"):
        status = outcome.get("status")
        why = f"refused it (HTTP {status})" if status else "could not be reached"
        return PaymentProgress("refused", True, f"The payment notification was not accepted: the gateway {why}.")
    if outcome and not outcome.get("final"):
        return PaymentProgress(
            "waiting", False, "Payment sent; the gateway is not answering yet, the provider keeps retrying."
        )
    return PaymentProgress("waiting", False, "Payment sent, waiting for confirmation.")


SIMULATOR_DELIVERY_RETRIES = 8  # with backoff 1, 2, 4 ... 60 s: about four minutes of trying
SIMULATOR_OUTCOME_TTL = 3600


@shared_task(
    name="billing.deliver_simulator_webhook", bind=True, ignore_result=True, max_retries=SIMULATOR_DELIVERY_RETRIES
)
def deliver_simulator_webhook(self, *, schema_name: str, url: str, host: str, body: str, payment_ref: str) -> int:
    """The payment simulator's provider side: POST the signed event to the gateway's webhook over HTTP.

    Queued by the pay page (which never calls its own server). Retried with backoff while the gateway
    is unreachable or answers 5xx/429; a 2xx or a 4xx is final. Safe to run twice: the event carries
    one payment reference, and the gateway applies a reference once. Returns the last HTTP status
    (0: no answer)."""
    try:
        status = send_webhook(url=url, host=host, body=body.encode()).status
    except OSError as exc:
        status = 0
        logger.warning(
            "simulator webhook not delivered", extra={"payment_ref": payment_ref, "error": type(exc).__name__}
        )
    final = 200 <= status < 500 and status != 429
    gave_up = not final and self.request.retries >= self.max_retries
    try:
        with schema_context(schema_name):
            cache.set(
                delivery_outcome_key(payment_ref),
                {"status": status, "final": final or gave_up, "delivered": 200 <= status < 300},
                SIMULATOR_OUTCOME_TTL,
            )
    except Exception:  # noqa: BLE001 - the note is only for the pay page; the delivery is what matters
        logger.warning("simulator delivery outcome not noted", extra={"payment_ref": payment_ref})
    if gave_up:
        logger.error("simulator webhook given up", extra={"payment_ref": payment_ref, "status": status})
    elif not final:
        raise self.retry(countdown=min(60, 2**self.request.retries))
    elif status >= 300:
        logger.error("simulator webhook refused", extra={"payment_ref": payment_ref, "status": status})
    return status
