"""Customer writes (channel schema)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from kernel.errors import ApplicationError
from tenants.customers.models import Customer


class CustomerExists(ApplicationError):
    code = "customer_exists"
    http_status = 409
    title = "Customer already exists"
    what_to_do = "A customer with this `external_ref` exists; fetch it instead."


class CustomerNotFound(ApplicationError):
    code = "customer_not_found"
    http_status = 404
    title = "No such customer"
    what_to_do = "No such customer in this channel."


def create_customer(*, external_ref: str, name: str, email: str = "") -> Customer:
    try:
        with transaction.atomic():
            return Customer.objects.create(external_ref=external_ref, name=name, email=email)
    except IntegrityError:
        raise CustomerExists(f"A customer with reference {external_ref!r} already exists in this channel.") from None


def customer_get(*, customer_id) -> Customer:
    text = str(customer_id)
    customer = Customer.objects.filter(pk=int(text)).first() if text.isascii() and text.isdigit() else None
    if customer is None:
        raise CustomerNotFound(f"No customer {customer_id!r} in this channel.")
    return customer
