"""Local fakes of Midtrans (Snap, status, refund) and Xendit (invoices, refunds): small real HTTP
servers on 127.0.0.1 that the adapters call over the network, with the request and response shapes of
the providers' public API references, and that make notifications the way each provider does
(Midtrans: ``signature_key`` = SHA-512 of order_id + status_code + gross_amount + server key;
Xendit: the account's ``x-callback-token`` header).

Each fake records the requests it received (``requests``) so tests can assert what was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Fake:
    def __init__(self, secret: str):
        self.secret = secret
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict | list) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = {"method": method, "path": self.path, "headers": dict(self.headers), "body": body}
                with fake.lock:
                    fake.requests.append(request)
                    expected = "Basic " + base64.b64encode(f"{fake.secret}:".encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        status, answer = fake.unauthorized()
                    else:
                        status, answer = fake.route(method, self.path, body, self.headers)
                self._answer(status, answer)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, prefix: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(prefix)]


def _now_wib() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------------ Midtrans

# status_code per transaction_status, as Midtrans's notifications and status API carry them
MIDTRANS_STATUS_CODES = {
    "capture": "200", "settlement": "200", "pending": "201", "deny": "202", "cancel": "200", "expire": "407",
    "failure": "202", "refund": "200", "partial_refund": "200",
}  # fmt: skip
REFUNDABLE = {"credit_card", "gopay", "shopeepay", "qris", "akulaku"}


class FakeMidtrans(_Fake):
    """Snap ``POST /snap/v1/transactions``; ``GET /v2/{order_id|transaction_id}/status``;
    ``POST /v2/{order_id|transaction_id}/refund`` (idempotent by ``refund_key``)."""

    def __init__(self, server_key: str = "SB-Mid-server-fake"):  # noqa: S107 - a fake's own key
        super().__init__(server_key)
        self.snaps: dict[str, dict] = {}  # order_id -> the Snap request and its token
        self.transactions: dict[str, dict] = {}  # order_id -> the transaction's status body
        self.refunds: dict[str, dict] = {}  # refund_key -> the answer

    def unauthorized(self):
        return 401, {"status_code": "401", "status_message": "Unknown Merchant server_key/id"}

    def route(self, method, path, body, headers):
        if method == "POST" and path == "/snap/v1/transactions":
            order_id = body["transaction_details"]["order_id"]
            if order_id in self.snaps:
                return 400, {"error_messages": ["transaction_details.order_id has already been taken"]}
            token = secrets.token_hex(16)
            notify_to = headers.get("X-Override-Notification")
            self.snaps[order_id] = {"request": body, "token": token, "notification_url": notify_to}
            return 201, {"token": token, "redirect_url": f"{self.base_url}/snap/v4/redirection/{token}"}
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "v2":
            transaction = self._find(parts[1])
            if transaction is None:
                return 404, {"status_code": "404", "status_message": "Transaction doesn't exist."}
            if method == "GET" and parts[2] == "status":
                return 200, dict(transaction)
            if method == "POST" and parts[2] == "refund":
                return 200, self._refund(transaction, body)
        return 404, {"status_code": "404", "status_message": "Not found"}

    def _find(self, key: str) -> dict | None:
        return self.transactions.get(key) or next(
            (t for t in self.transactions.values() if t["transaction_id"] == key), None
        )

    def _refund(self, transaction: dict, body: dict) -> dict:
        key = body.get("refund_key") or secrets.token_hex(8)
        if key in self.refunds:
            return self.refunds[key]
        amount = int(body.get("amount") or float(transaction["gross_amount"]))
        gross = int(float(transaction["gross_amount"]))
        refunded = sum(
            int(float(r["refund_amount"])) for r in self.refunds.values() if r["order_id"] == transaction["order_id"]
        )
        if transaction["payment_type"] not in REFUNDABLE or transaction["transaction_status"] not in (
            "settlement", "capture", "partial_refund",
        ):  # fmt: skip
            return {"status_code": "412", "status_message": "Merchant cannot modify the status of the transaction"}
        if refunded + amount > gross:
            return {"status_code": "413", "status_message": "The request could not be processed: amount too large"}
        answer = {
            "status_code": "200", "status_message": "Success, refund request is approved",
            "transaction_id": transaction["transaction_id"], "order_id": transaction["order_id"],
            "gross_amount": transaction["gross_amount"], "currency": transaction["currency"],
            "payment_type": transaction["payment_type"], "transaction_time": transaction["transaction_time"],
            "transaction_status": "refund" if refunded + amount == gross else "partial_refund",
            "refund_chargeback_id": len(self.refunds) + 1, "refund_amount": f"{amount}.00", "refund_key": key,
        }  # fmt: skip
        self.refunds[key] = answer
        return answer

    # -- the customer's side and the notifications

    def set_status(
        self, order_id: str, transaction_status: str, *, gross_amount: str | None = None,
        payment_type: str = "gopay", fraud_status: str = "accept", currency: str = "IDR",
    ) -> dict:  # fmt: skip
        """The customer pays (or the payment moves on): the transaction as the status API shows it now."""
        with self.lock:
            snap = self.snaps[order_id]["request"]["transaction_details"]
            transaction = self.transactions.setdefault(
                order_id,
                {
                    "transaction_id": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}",
                    "order_id": order_id, "merchant_id": "G000000000", "transaction_time": _now_wib(),
                    "currency": currency, "payment_type": payment_type,
                },
            )  # fmt: skip
            transaction.update(
                transaction_status=transaction_status,
                status_code=MIDTRANS_STATUS_CODES[transaction_status],
                status_message=f"midtrans payment notification ({transaction_status})",
                gross_amount=gross_amount or f"{snap['gross_amount']}.00",
                fraud_status=fraud_status, currency=currency, payment_type=payment_type,
            )  # fmt: skip
            if transaction_status == "settlement":
                transaction["settlement_time"] = _now_wib()
            transaction["signature_key"] = self.sign(transaction)
            return dict(transaction)

    def sign(self, fields: dict, *, key: str | None = None) -> str:
        key = self.secret if key is None else key
        text = f"{fields['order_id']}{fields['status_code']}{fields['gross_amount']}{key}"
        return hashlib.sha512(text.encode()).hexdigest()

    def notification(self, order_id: str, **changes) -> bytes:
        """The HTTP notification Midtrans POSTs for the transaction as it is now (``changes`` alter the
        body after signing, as a forger would; a ``signature_key`` in them replaces the signature)."""
        with self.lock:
            body = dict(self.transactions[order_id])
        body.update(changes)
        return json.dumps(body).encode()


# ------------------------------------------------------------------------------------------ Xendit


class FakeXendit(_Fake):
    """``POST /v2/invoices``; ``GET /v2/invoices/{id}``; ``GET /v2/invoices?external_id=``;
    ``POST /refunds`` (idempotent by the ``Idempotency-key`` header); ``GET /refunds/{id}``."""

    def __init__(self, secret_key: str = "xnd_development_fake", callback_token: str = "cbtoken-fake"):  # noqa: S107
        super().__init__(secret_key)
        self.callback_token = callback_token
        self.invoices: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}  # refund id -> refund
        self.by_idempotency_key: dict[str, str] = {}
        self.refund_outcome = "SUCCEEDED"  # what a new refund becomes at once: SUCCEEDED, PENDING or FAILED

    def unauthorized(self):
        return 401, {"error_code": "INVALID_API_KEY", "message": "API key is not authorized for this API service"}

    def route(self, method, path, body, headers):
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if method == "POST" and path == "/v2/invoices":
            if not isinstance(body.get("amount"), int | float) or body["amount"] < 1:
                return 400, {"error_code": "API_VALIDATION_ERROR", "message": "amount must be a positive number"}
            invoice_id = secrets.token_hex(12)
            invoice = {
                "id": invoice_id, "external_id": body["external_id"], "user_id": "5f0000000000000000000001",
                "status": "PENDING", "merchant_name": "Fake Merchant", "merchant_profile_picture_url": "",
                "amount": body["amount"], "description": body.get("description", ""),
                "expiry_date": now, "invoice_url": f"{self.base_url}/web/invoices/{invoice_id}",
                "available_banks": [], "available_retail_outlets": [], "available_ewallets": [],
                "should_exclude_credit_card": False, "should_send_email": False,
                "created": now, "updated": now, "currency": body.get("currency", "IDR"),
                "items": body.get("items", []),
            }  # fmt: skip
            self.invoices[invoice_id] = invoice
            return 200, dict(invoice)
        if method == "GET" and path.startswith("/v2/invoices?"):
            external_id = parse_qs(urlsplit(path).query).get("external_id", [""])[0]
            return 200, [dict(i) for i in self.invoices.values() if i["external_id"] == external_id]
        if method == "GET" and path.startswith("/v2/invoices/"):
            invoice = self.invoices.get(path.rsplit("/", 1)[1])
            if invoice is None:
                return 404, {"error_code": "INVOICE_NOT_FOUND_ERROR", "message": "Could not find invoice"}
            return 200, dict(invoice)
        if method == "POST" and path == "/refunds":
            key = headers.get("Idempotency-key")
            if key and key in self.by_idempotency_key:
                return 200, dict(self.refunds[self.by_idempotency_key[key]])
            invoice = self.invoices.get(body.get("invoice_id", ""))
            if invoice is None:
                return 404, {"error_code": "DATA_NOT_FOUND", "message": "Invoice not found"}
            refunded = sum(r["amount"] for r in self.refunds.values() if r["invoice_id"] == invoice["id"])
            if invoice["status"] not in ("PAID", "SETTLED") or refunded + body["amount"] > invoice["amount"]:
                return 400, {"error_code": "API_VALIDATION_ERROR", "message": "The refund is not possible"}
            refund_id = f"rfd-{secrets.token_hex(8)}"
            refund = {
                "id": refund_id, "payment_request_id": None, "invoice_id": invoice["id"],
                "amount": body["amount"], "payment_id": f"pay-{secrets.token_hex(6)}", "channel_code": "BCA",
                "currency": body.get("currency", "IDR"), "status": self.refund_outcome, "reason": body["reason"],
                "reference_id": body.get("reference_id"), "failure_code": None, "refund_fee_amount": 0,
                "created": now, "updated": now, "metadata": None,
            }  # fmt: skip
            self.refunds[refund_id] = refund
            if key:
                self.by_idempotency_key[key] = refund_id
            return 200, dict(refund)
        if method == "GET" and path.startswith("/refunds/"):
            refund = self.refunds.get(path.rsplit("/", 1)[1])
            if refund is None:
                return 404, {"error_code": "DATA_NOT_FOUND", "message": "Refund not found"}
            return 200, dict(refund)
        return 404, {"error_code": "NOT_FOUND", "message": "Not found"}

    # -- the customer's side and the callbacks

    def invoice_for(self, order_id: str) -> dict:
        return next(i for i in self.invoices.values() if i["external_id"] == order_id)

    def set_status(self, order_id: str, status: str, *, paid_amount=None, currency: str | None = None) -> dict:
        with self.lock:
            invoice = self.invoice_for(order_id)
            invoice["status"] = status
            if currency:
                invoice["currency"] = currency
            if status in ("PAID", "SETTLED"):
                invoice.update(
                    paid_amount=invoice["amount"] if paid_amount is None else paid_amount,
                    paid_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    payment_method="BANK_TRANSFER", bank_code="BCA", payment_channel="BCA",
                    payment_destination="8808999912345678",
                )  # fmt: skip
            return dict(invoice)

    def callback(self, order_id: str, **changes) -> bytes:
        """The invoice callback Xendit POSTs for the invoice as it is now (``changes`` alter it)."""
        with self.lock:
            invoice = self.invoice_for(order_id)
            body = {
                "id": invoice["id"], "external_id": invoice["external_id"], "user_id": invoice["user_id"],
                "is_high": False, "status": invoice["status"], "merchant_name": invoice["merchant_name"],
                "amount": invoice["amount"], "currency": invoice["currency"], "description": invoice["description"],
                "created": invoice["created"], "updated": invoice["updated"],
            }  # fmt: skip
            for name in ("paid_amount", "paid_at", "payment_method", "bank_code", "payment_channel",
                         "payment_destination"):  # fmt: skip
                if name in invoice:
                    body[name] = invoice[name]
        body.update(changes)
        return json.dumps(body).encode()
