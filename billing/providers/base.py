"""What every payment provider is: the adapter protocol, its events and its refusals.

A provider turns an order into payment instructions, verifies and parses its webhooks (HMAC over
the raw body), and sends money back. Everything else - what a payment means for quota - is ours,
in ``billing.retail.services``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kernel.errors import ApplicationError


class InvalidWebhookSignature(ApplicationError):
    code = "invalid_signature"
    http_status = 401
    title = "Invalid webhook signature"
    what_to_do = "The provider signature is missing, wrong or older than five minutes."


class MalformedWebhook(ApplicationError):
    code = "malformed_webhook"
    title = "Malformed webhook"
    what_to_do = "The body is not an event this provider sends."


class UnknownProvider(ApplicationError):
    code = "unknown_provider"
    http_status = 404
    title = "Unknown payment provider"
    what_to_do = "No payment provider by that name."


@dataclass(frozen=True)
class PaymentEvent:
    provider_ref: str  # the provider's id of the payment: the idempotency key of the webhook
    order_id: str
    succeeded: bool
    amount_rupiah: int
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderRefund:
    """The provider's answer to a refund: ``succeeded`` False is its final refusal (the refund is then
    ``failed``). A provider that cannot be reached raises instead, and the refund is sent again later."""

    reference: str
    succeeded: bool


class PaymentProvider(Protocol):
    name: str

    def payment_instructions(self, *, order, base_url: str) -> dict: ...

    def parse_webhook(self, *, body: bytes, headers) -> PaymentEvent: ...

    def refund(self, *, provider_ref: str, amount_rupiah: int, reference: str) -> ProviderRefund:
        """Send money back. Must be idempotent by ``reference`` (our refund's id): the refund sender
        calls it again after a crash between the provider's answer and our commit."""
        ...
