"""Reads of a channel's customers (current schema)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tenants.customers.models import Customer


def customers_for_listing(*, external_ref: str | None = None) -> QuerySet[Customer]:
    """The channel's customers, oldest first (by id); only the one the storefront knows as
    ``external_ref`` when given."""
    customers = Customer.objects.order_by("id")
    if external_ref is not None:
        customers = customers.filter(external_ref=external_ref)
    return customers


def customers_for_portal(*, search: str = "") -> QuerySet[Customer]:
    """The channel's customers, newest first; those whose name, reference or e-mail contains ``search``."""
    customers = Customer.objects.order_by("-id")
    if search:
        customers = customers.filter(
            Q(name__icontains=search) | Q(external_ref__icontains=search) | Q(email__icontains=search)
        )
    return customers


def customer_count() -> int:
    return Customer.objects.count()
