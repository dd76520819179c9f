"""Midtrans (Snap): a hosted checkout per order, HTTP notifications, the status API and refunds.

- **Checkout**: when the customer first opens the order's ``pay_url`` (``/pay/midtrans/<order>``),
  ``POST {snap}/snap/v1/transactions`` with the order's id and gross amount (integer rupiah) and an
  expiry at the order's own; the answer's ``token`` and ``redirect_url`` are kept on the order and the
  customer is redirected there. ``X-Override-Notification`` sends this order's notifications to the
  channel host it was paid from (``/api/v1/payments/midtrans/webhook``).
- **Notification**: verified by ``signature_key`` = SHA-512 hex of ``order_id + status_code +
  gross_amount + server key`` (constant-time comparison), then **confirmed** with
  ``GET {api}/v2/{transaction_id}/status``: what is recorded is the provider's answer there, not the
  notification's claims, so a notification that arrives late (``pending`` after ``settlement``) or one
  built with a leaked key cannot move an order the provider has not moved.
- **States**: ``settlement``, and ``capture`` with ``fraud_status`` ``accept``, are paid; ``pending``,
  ``authorize`` and a challenged capture are pending (nothing recorded); ``deny``, ``cancel`` and
  ``failure`` failed; ``expire`` expired; ``refund``/``partial_refund``/``chargeback`` change nothing
  here (refunds start on our side).
- **Amounts**: ``gross_amount`` is a string with two decimals ("10000.00"); it must be a whole number
  of rupiah, and the currency IDR.
- **Refund**: ``POST {api}/v2/{transaction_id}/refund`` with ``refund_key`` = our refund reference
  (Midtrans treats a repeated key as the same refund). ``status_code`` 200 in the body is done; another
  4xx code in the body (e.g. 412, a method Midtrans cannot refund) is its final refusal.

Authentication: HTTP Basic with the server key as user name and an empty password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from datetime import timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from billing.providers.base import (
    InvalidWebhookSignature,
    MalformedWebhook,
    PaymentEvent,
    ProviderRefund,
    ProviderUnavailable,
)
from billing.providers.checkout import checkout_instructions, stored_checkout
from billing.providers.http import call_json

WEBHOOK_PATH = "/api/v1/payments/midtrans/webhook"
WIB = dt_timezone(timedelta(hours=7))  # Midtrans reads and writes times in Jakarta time

PAID = {"settlement"}
PENDING = {"pending", "authorize"}
FAILED = {"deny", "cancel", "failure"}
EXPIRED = {"expire"}


def signature(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


def whole_rupiah(value) -> int:
    """A provider's amount ("10000.00") in rupiah: 10000. Anything that is not a whole, non-negative
    number of rupiah is malformed."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MalformedWebhook(f"The amount {value!r} is not a number.") from None
    if not amount.is_finite() or amount != amount.to_integral_value() or amount < 0:
        raise MalformedWebhook(f"The amount {value!r} is not a whole number of rupiah.")
    return int(amount)


def refund_key(reference: str) -> str:
    """Our refund reference in the characters Midtrans allows in a ``refund_key``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", reference)


class MidtransProvider:
    name = "midtrans"

    def __init__(self):
        self.server_key = settings.MIDTRANS_SERVER_KEY
        self.snap_base = settings.MIDTRANS_SNAP_BASE_URL.rstrip("/")
        self.api_base = settings.MIDTRANS_API_BASE_URL.rstrip("/")

    # ------------------------------------------------------------------ checkout

    def payment_instructions(self, *, order, base_url: str) -> dict:
        return checkout_instructions(self.name, order=order, base_url=base_url)

    def checkout_url(self, *, order, base_url: str) -> str:
        return stored_checkout(order, lambda: self._open_checkout(order, base_url))["redirect_url"]

    def _open_checkout(self, order, base_url: str) -> dict:
        minutes = max(1, math.ceil((order.expires_at - timezone.now()).total_seconds() / 60))
        body = {
            "transaction_details": {"order_id": order.pk, "gross_amount": order.total_rupiah},
            "item_details": [
                {
                    "id": "e-meterai",
                    "price": order.unit_price_rupiah + order.fee_per_unit_rupiah,
                    "quantity": order.quantity,
                    "name": "e-Meterai",
                }
            ],
            "expiry": {
                "start_time": timezone.now().astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S +0700"),
                "unit": "minutes",
                "duration": minutes,
            },
        }
        answer = call_json(
            self.name, "POST", f"{self.snap_base}/snap/v1/transactions", secret=self.server_key, body=body,
            headers={"X-Override-Notification": base_url.rstrip("/") + WEBHOOK_PATH},
        )  # fmt: skip
        if answer.status not in (200, 201) or not answer.data.get("token") or not answer.data.get("redirect_url"):
            messages = "; ".join(str(m) for m in answer.data.get("error_messages", [])) or f"HTTP {answer.status}"
            raise ProviderUnavailable(f"Midtrans did not open a checkout for this order: {messages}")
        return {"token": answer.data["token"], "redirect_url": answer.data["redirect_url"]}

    # ------------------------------------------------------------------ notifications

    def parse_webhook(self, *, body: bytes, headers) -> PaymentEvent:
        try:
            note = json.loads(body)
            order_id, status_code = str(note["order_id"]), str(note["status_code"])
            gross_amount, given = str(note["gross_amount"]), str(note["signature_key"])
            transaction_id = str(note["transaction_id"])
        except (ValueError, KeyError, TypeError):
            raise MalformedWebhook("The body is not a Midtrans notification.") from None
        expected = signature(
            order_id=order_id, status_code=status_code, gross_amount=gross_amount, server_key=self.server_key
        )
        if not self.server_key or not hmac.compare_digest(expected.encode(), given.encode()):
            raise InvalidWebhookSignature("The Midtrans signature_key does not match the notification.")
        status = self.transaction_status(transaction_id)
        if str(status.get("order_id")) != order_id or str(status.get("transaction_id")) != transaction_id:
            raise InvalidWebhookSignature("Midtrans does not confirm this notification: its status API disagrees.")
        return self._event(status)

    def transaction_status(self, transaction_id: str) -> dict:
        answer = call_json(
            self.name, "GET", f"{self.api_base}/v2/{quote(transaction_id, safe='')}/status", secret=self.server_key
        )
        code = str(answer.data.get("status_code", answer.status))
        if answer.status == 404 or code == "404":
            raise InvalidWebhookSignature("Midtrans does not know the transaction this notification is about.")
        if answer.status != 200 or "transaction_status" not in answer.data:
            raise ProviderUnavailable(f"Midtrans's status API answered {code}; try again later.")
        return answer.data

    def _event(self, status: dict) -> PaymentEvent:
        state = str(status["transaction_status"])
        fraud = str(status.get("fraud_status", "accept"))
        amount = whole_rupiah(status.get("gross_amount"))
        common = {
            "provider_ref": str(status["transaction_id"]),
            "order_id": str(status["order_id"]),
            "amount_rupiah": amount,
            "currency": str(status.get("currency", "IDR")),
            "raw": status,
        }
        if state in PAID or (state == "capture" and fraud == "accept"):
            return PaymentEvent(succeeded=True, **common)
        if state in PENDING or state == "capture":  # (a capture under fraud review is not money yet)
            return PaymentEvent(succeeded=False, state=PaymentEvent.PENDING, **common)
        if state in FAILED:
            return PaymentEvent(succeeded=False, **common)
        if state in EXPIRED:
            return PaymentEvent(succeeded=False, state=PaymentEvent.EXPIRED, **common)
        # refund, partial_refund, chargeback...: our refunds start here; the notification changes nothing
        return PaymentEvent(succeeded=False, state=PaymentEvent.PENDING, **common)

    # ------------------------------------------------------------------ refunds

    def refund(self, *, provider_ref: str, amount_rupiah: int, reference: str) -> ProviderRefund:
        key = refund_key(reference)
        answer = call_json(
            self.name, "POST", f"{self.api_base}/v2/{quote(provider_ref, safe='')}/refund", secret=self.server_key,
            body={"refund_key": key, "amount": amount_rupiah, "reason": "e-Meterai refund"},
        )  # fmt: skip
        code = str(answer.data.get("status_code", answer.status))
        if code == "200":
            return ProviderRefund(reference=str(answer.data.get("refund_chargeback_id") or key), succeeded=True)
        if code.startswith("5") or code in ("401", "403", "429"):
            raise ProviderUnavailable(f"Midtrans answered the refund with {code}; it is sent again later.")
        return ProviderRefund(reference=key, succeeded=False)
