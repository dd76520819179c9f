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
    ProviderUnavailable,
    RefundStillPending,
    UnknownProvider,
)

__all__ = [
    "InvalidWebhookSignature",
    "MalformedWebhook",
    "PaymentEvent",
    "PaymentProvider",
    "ProviderRefund",
    "ProviderUnavailable",
    "RefundStillPending",
    "UnknownProvider",
    "default_provider",
    "enabled_providers",
    "get_provider",
]

# Every adapter this code has, by name; which of them an installation uses is the setting
# ``PAYMENT_PROVIDERS`` (production refuses to start with ``simulator`` in it).
ADAPTERS = {
    "simulator": "billing.providers.simulator.SimulatorProvider",
    "midtrans": "billing.providers.midtrans.MidtransProvider",
    "xendit": "billing.providers.xendit.XenditProvider",
}


def enabled_providers() -> list[str]:
    from django.conf import settings

    return [name for name in settings.PAYMENT_PROVIDERS if name in ADAPTERS]


def default_provider() -> str:
    """The provider an order gets when it names none: the first enabled one."""
    enabled = enabled_providers()
    if not enabled:
        raise UnknownProvider("No payment provider is enabled on this gateway (PAYMENT_PROVIDERS is empty).")
    return enabled[0]


def get_provider(name: str) -> PaymentProvider:
    """The adapter called ``name``, if this installation enables it: a provider that is not enabled does
    not exist (its orders, webhooks and pages are refused as unknown, and never credit)."""
    from django.utils.module_loading import import_string

    if name not in enabled_providers():
        raise UnknownProvider(f"There is no payment provider called {name!r} on this gateway.")
    return import_string(ADAPTERS[name])()
