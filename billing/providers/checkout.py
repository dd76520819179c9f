"""A hosted checkout (a Midtrans Snap transaction, a Xendit invoice) is opened once per order: the
provider's answer is kept on the order (``Order.checkout``), and later views of the order show it."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from billing.retail.models import Order


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
