"""The ``simulator`` payment provider, for the demo and the tests.

It behaves like a real provider over real HTTP: its pay page (served at
``/pay/simulator/<order>`` on the channel host) lets a person pay or fail an order, and the
simulator then POSTs a signed webhook to the gateway, exactly as an outside provider would.

Signature: header ``Simulator-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``;
a signature older than five minutes is refused (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from billing.providers import InvalidWebhookSignature, MalformedWebhook, PaymentEvent, ProviderRefund

SIGNATURE_HEADER = "Simulator-Signature"
TOLERANCE_SECONDS = 300


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
    """POST a signed event to the gateway, as the real provider would (a real HTTP request)."""
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
            "expires_at": order.expires_at.isoformat(),
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
