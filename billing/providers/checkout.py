"""A hosted checkout (a Midtrans Snap transaction, a Xendit invoice) is opened once per order, when the
customer first opens the order's ``pay_url`` (``/pay/<provider>/<order>`` on the channel host, which
redirects to it): the provider's answer is kept on the order (``Order.checkout``).

The order API never calls the provider: placing or reading an order holds database locks (the stock
reservation, the idempotency claim) that must not wait on another company's network."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from billing.retail.models import Order
from kernel.timestamps import utc_timestamp


def checkout_instructions(provider: str, *, order: Order, base_url: str) -> dict:
    """What the order API shows: the gateway's own pay page, which opens the checkout and redirects."""
    return {
        "method": provider,
        "pay_url": f"{base_url.rstrip('/')}/pay/{provider}/{order.pk}",
        "amount_rupiah": order.total_rupiah,
        "expires_at": utc_timestamp(order.expires_at),
    }


def stored_checkout(order: Order, open_checkout: Callable[[], dict]) -> dict:
    """The order's checkout, opened with ``open_checkout()`` the first time. The order row is locked
    while it is opened, so two requests for one order never open two checkouts; if the provider fails,
    nothing is kept and the next view of the order tries again."""
    if order.checkout:
        return order.checkout
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.checkout:
            locked.checkout = open_checkout()
            locked.save(update_fields=["checkout"])
    order.checkout = locked.checkout
    return order.checkout
