"""Reads of a channel's retail orders and refunds (current schema)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from billing.retail.errors import OrderNotFound, RefundNotFound
from billing.retail.models import Order, Refund
from kernel.db import narrowed


def order_get_for(*, customer=None, order_id: str) -> Order:
    """The order ``order_id`` in the current channel schema (and of ``customer`` when given)."""
    queryset = Order.objects.filter(pk=order_id)
    if customer is not None:
        queryset = queryset.filter(customer=customer)
    order = queryset.select_related("customer").first()
    if order is None:
        raise OrderNotFound(f"No order {order_id!r} in this channel.")
    return order


def orders_for_listing(
    *,
    customer_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Order]:
    """The channel's orders, newest first (created, then id), narrowed by customer, status and a
    ``[since, until)`` window of creation times."""
    return narrowed(Order.objects.all(), customer_id=customer_id, status=status, since=since, until=until)


def refunds_for_listing(*, order_id: str) -> QuerySet[Refund]:
    """The refunds of one order, newest first (created, then id)."""
    return Refund.objects.filter(order_id=order_id).order_by("-created_at", "-id")


def refund_get_for(*, refund_id: str) -> Refund:
    """The refund ``refund_id`` in the current channel schema."""
    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id!r} in this channel.")
    return refund


def orders_for_portal(*, status: str = "") -> QuerySet[Order]:
    """The channel's orders with their customers (the model's order); only ``status``'s when it is one."""
    orders = Order.objects.select_related("customer")
    if status in Order.Status.values:
        orders = orders.filter(status=status)
    return orders


def recent_orders(limit: int = 5) -> list[Order]:
    return list(Order.objects.select_related("customer")[:limit])
