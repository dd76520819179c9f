from __future__ import annotations

from billing.retail.errors import OrderNotFound
from billing.retail.models import Order


def order_get_for(*, customer=None, order_id: str) -> Order:
    """The order ``order_id`` in the current channel schema (and of ``customer`` when given)."""
    queryset = Order.objects.filter(pk=order_id)
    if customer is not None:
        queryset = queryset.filter(customer=customer)
    order = queryset.select_related("customer").first()
    if order is None:
        raise OrderNotFound(f"No order {order_id!r} in this channel.")
    return order
