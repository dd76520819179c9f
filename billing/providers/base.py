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


class ProviderUnavailable(ApplicationError):
    code = "payment_provider_unavailable"
    http_status = 503
    title = "Payment provider unavailable"
    what_to_do = (
        "The payment provider did not answer, or answered with an error; nothing was recorded. Retry later: "
        "a provider resends its notifications, and refunds are sent again by the next sweep."
    )


@dataclass(frozen=True)
class PaymentEvent:
    """A payment as the provider reports it. ``state`` says more than ``succeeded`` for the states a
    provider has besides success and failure: ``pending`` (nothing to record yet) and ``expired`` (a
    failure that closes the order as expired)."""

    PENDING = "pending"
    EXPIRED = "expired"

    provider_ref: str  # the provider's id of the payment: the idempotency key of the webhook
    order_id: str
    succeeded: bool
    amount_rupiah: int
    raw: dict = field(default_factory=dict)
    state: str = ""  # "" (as ``succeeded`` says), PENDING or EXPIRED
    currency: str = "IDR"


@dataclass(frozen=True)
class ProviderRefund:
    """The provider's answer to a refund: ``succeeded`` False is its final refusal (the refund is then
    ``failed``). A provider that cannot be reached raises instead, and the refund is sent again later."""

    reference: str
    succeeded: bool


class RefundStillPending(Exception):  # noqa: N818 - a state, not an error: never answered to a client
    """The provider accepted a refund but has not finished it: the refund stays pending, and the sender
    asks again (with the same reference) on its next round."""


class PaymentProvider(Protocol):
    name: str

    def payment_instructions(self, *, order, base_url: str) -> dict:
        """What the order API shows the customer (``pay_url``, amount, expiry); never calls the provider."""
        ...

    def checkout_url(self, *, order, base_url: str) -> str:
        """The provider's hosted checkout for ``order``, opened once (a provider without one - the
        simulator, which serves its own page - does not have this method)."""
        ...

    def parse_webhook(self, *, body: bytes, headers) -> PaymentEvent: ...

    def refund(self, *, provider_ref: str, amount_rupiah: int, reference: str) -> ProviderRefund:
        """Send money back. Must be idempotent by ``reference`` (our refund's id): the refund sender
        calls it again after a crash between the provider's answer and our commit."""
        ...
