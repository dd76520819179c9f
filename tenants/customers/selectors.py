"""Reads of a channel's customers (current schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.customers.models import Customer


def customers_for_listing(*, external_ref: str | None = None) -> QuerySet[Customer]:
    """The channel's customers, oldest first (by id); only the one the storefront knows as
    ``external_ref`` when given."""
    customers = Customer.objects.order_by("id")
    if external_ref is not None:
        customers = customers.filter(external_ref=external_ref)
    return customers
