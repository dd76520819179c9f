"""Payment providers: a small adapter interface (``billing.providers.base``), one module per provider.

A provider turns an order into payment instructions, verifies and parses its webhooks (HMAC over
the raw body), and sends money back. Everything else - what a payment means for quota - is ours,
in ``billing.retail.services``.
"""

from __future__ import annotations

from billing.providers.base import (
    InvalidWebhookSignature,
    MalformedWebhook,
    PaymentEvent,
    PaymentProvider,
    ProviderRefund,
    UnknownProvider,
)
from billing.providers.simulator import SimulatorProvider

__all__ = [
    "InvalidWebhookSignature",
    "MalformedWebhook",
    "PaymentEvent",
    "PaymentProvider",
    "ProviderRefund",
    "UnknownProvider",
    "get_provider",
]


def get_provider(name: str) -> PaymentProvider:
    providers: dict[str, PaymentProvider] = {"simulator": SimulatorProvider()}
    try:
        return providers[name]
    except KeyError:
        raise UnknownProvider(f"There is no payment provider called {name!r}.") from None
