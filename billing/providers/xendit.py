"""Xendit (Invoices): a hosted invoice per order, invoice callbacks, the invoice API and refunds.

- **Checkout**: when the customer first opens the order's ``pay_url`` (``/pay/xendit/<order>``),
  ``POST /v2/invoices`` with ``external_id`` = our order id, the amount in whole rupiah, ``currency``
  IDR and ``invoice_duration`` up to the order's expiry; the answer's ``id`` and ``invoice_url`` are
  kept on the order and the customer is redirected there.
- **Callback**: verified by the ``x-callback-token`` header, which must equal the account's callback
  verification token (constant-time comparison), then **confirmed** with ``GET /v2/invoices/{id}``:
  what is recorded is the invoice as Xendit shows it, so a late callback (``EXPIRED`` after ``PAID``) or
  one built with a leaked token cannot move an order Xendit has not moved.
- **States**: ``PAID`` and ``SETTLED`` are paid; ``PENDING`` is pending (nothing recorded); ``EXPIRED``
  expired. The invoice ``amount`` (and ``paid_amount`` when present) must be the order's total in whole
  rupiah, the currency IDR.
- **Refund**: ``POST /refunds`` with ``invoice_id``, the amount, and our refund reference as
  ``reference_id`` and ``Idempotency-key`` (a repeat is the same refund). ``SUCCEEDED`` is done,
  ``FAILED`` (or a 4xx refusal) final; ``PENDING`` is asked again with ``GET /refunds/{id}`` and, while
  still pending, on the sender's next round.

Authentication: HTTP Basic with the secret API key as user name and an empty password.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from billing.providers.base import (
    InvalidWebhookSignature,
    MalformedWebhook,
    PaymentEvent,
    ProviderRefund,
    ProviderUnavailable,
    RefundStillPending,
)
from billing.providers.checkout import checkout_instructions, stored_checkout
from billing.providers.http import call_json
from billing.providers.midtrans import whole_rupiah

TOKEN_HEADER = "x-callback-token"  # noqa: S105 - the header's name, not a secret
MIN_INVOICE_SECONDS = 60


class XenditProvider:
    name = "xendit"

    def __init__(self):
        self.secret_key = settings.XENDIT_SECRET_KEY
        self.callback_token = settings.XENDIT_CALLBACK_TOKEN
        self.api_base = settings.XENDIT_API_BASE_URL.rstrip("/")

    # ------------------------------------------------------------------ checkout

    def payment_instructions(self, *, order, base_url: str) -> dict:
        return checkout_instructions(self.name, order=order, base_url=base_url)

    def checkout_url(self, *, order, base_url: str) -> str:
        return stored_checkout(order, lambda: self._open_invoice(order))["invoice_url"]

    def _open_invoice(self, order) -> dict:
        """A pending invoice Xendit already has for the order (opened by an attempt that crashed before
        it was kept), else a new one: one invoice per order, so the customer cannot pay twice."""
        answer = call_json(
            self.name, "GET", f"{self.api_base}/v2/invoices?external_id={quote(order.pk, safe='')}",
            secret=self.secret_key, listing=True,
        )  # fmt: skip
        for invoice in answer.data if answer.status == 200 else []:
            same = invoice.get("external_id") == order.pk and invoice.get("amount") == order.total_rupiah
            if same and invoice.get("status") == "PENDING" and invoice.get("invoice_url"):
                return {"invoice_id": invoice["id"], "invoice_url": invoice["invoice_url"]}
        seconds = max(MIN_INVOICE_SECONDS, int((order.expires_at - timezone.now()).total_seconds()))
        body = {
            "external_id": order.pk,
            "amount": order.total_rupiah,
            "currency": "IDR",
            "description": f"{order.quantity} e-Meterai",
            "invoice_duration": seconds,
            "items": [
                {
                    "name": "e-Meterai",
                    "quantity": order.quantity,
                    "price": order.unit_price_rupiah + order.fee_per_unit_rupiah,
                }
            ],
        }
        answer = call_json(self.name, "POST", f"{self.api_base}/v2/invoices", secret=self.secret_key, body=body)
        if answer.status != 200 or not answer.data.get("id") or not answer.data.get("invoice_url"):
            why = answer.data.get("message") or answer.data.get("error_code") or f"HTTP {answer.status}"
            raise ProviderUnavailable(f"Xendit did not open an invoice for this order: {why}")
        return {"invoice_id": answer.data["id"], "invoice_url": answer.data["invoice_url"]}

    # ------------------------------------------------------------------ callbacks

    def parse_webhook(self, *, body: bytes, headers) -> PaymentEvent:
        given = headers.get(TOKEN_HEADER, "")
        if not self.callback_token or not hmac.compare_digest(given.encode(), self.callback_token.encode()):
            raise InvalidWebhookSignature("The x-callback-token header is missing or wrong.")
        try:
            callback = json.loads(body)
            invoice_id, external_id = str(callback["id"]), str(callback["external_id"])
        except (ValueError, KeyError, TypeError):
            raise MalformedWebhook("The body is not a Xendit invoice callback.") from None
        invoice = self.invoice(invoice_id)
        if str(invoice.get("id")) != invoice_id or str(invoice.get("external_id")) != external_id:
            raise InvalidWebhookSignature("Xendit does not confirm this callback: the invoice differs.")
        return self._event(invoice)

    def invoice(self, invoice_id: str) -> dict:
        answer = call_json(
            self.name, "GET", f"{self.api_base}/v2/invoices/{quote(invoice_id, safe='')}", secret=self.secret_key
        )
        if answer.status == 404:
            raise InvalidWebhookSignature("Xendit does not know the invoice this callback is about.")
        if answer.status != 200 or "status" not in answer.data:
            raise ProviderUnavailable(f"Xendit's invoice API answered HTTP {answer.status}; try again later.")
        return answer.data

    def _event(self, invoice: dict) -> PaymentEvent:
        status = str(invoice["status"]).upper()
        amount = whole_rupiah(invoice.get("amount"))
        if invoice.get("paid_amount") is not None and whole_rupiah(invoice["paid_amount"]) != amount:
            amount = whole_rupiah(invoice["paid_amount"])  # paid other than invoiced: the checks refuse it
        common = {
            "provider_ref": str(invoice["id"]),
            "order_id": str(invoice["external_id"]),
            "amount_rupiah": amount,
            "currency": str(invoice.get("currency", "IDR")),
            "raw": invoice,
        }
        if status in ("PAID", "SETTLED"):
            return PaymentEvent(succeeded=True, **common)
        if status == "EXPIRED":
            return PaymentEvent(succeeded=False, state=PaymentEvent.EXPIRED, **common)
        return PaymentEvent(succeeded=False, state=PaymentEvent.PENDING, **common)

    # ------------------------------------------------------------------ refunds

    def refund(self, *, provider_ref: str, amount_rupiah: int, reference: str) -> ProviderRefund:
        answer = call_json(
            self.name, "POST", f"{self.api_base}/refunds", secret=self.secret_key,
            body={
                "invoice_id": provider_ref, "reference_id": reference, "amount": amount_rupiah, "currency": "IDR",
                "reason": "REQUESTED_BY_CUSTOMER",
            },
            headers={"Idempotency-key": reference},
        )  # fmt: skip
        if answer.status == 409:
            raise ProviderUnavailable("Xendit is still processing this refund request; it is sent again later.")
        if answer.status >= 400:
            return ProviderRefund(reference=str(answer.data.get("error_code", answer.status)), succeeded=False)
        refund = answer.data
        if str(refund.get("status")) == "PENDING" and refund.get("id"):
            refund = call_json(
                self.name, "GET", f"{self.api_base}/refunds/{quote(str(refund['id']), safe='')}", secret=self.secret_key
            ).data
        status = str(refund.get("status"))
        if status == "SUCCEEDED":
            return ProviderRefund(reference=str(refund["id"]), succeeded=True)
        if status == "FAILED":
            return ProviderRefund(reference=str(refund.get("id", "")), succeeded=False)
        raise RefundStillPending(f"Xendit's refund {refund.get('id')} is {status}.")
