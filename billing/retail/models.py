from __future__ import annotations

import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

FACE_VALUE_RUPIAH = 10_000  # the stamp duty of one e-Meterai (UU 10/2020)


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def new_order_id() -> str:
    return new_public_id("ord")


def new_refund_id() -> str:
    return new_public_id("rfd")


class Order(models.Model):
    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment"
        PAID = "paid"  # money received, units not yet in the wallet (the sweeper finishes it)
        CREDITED = "credited"  # units in the customer's wallet
        EXPIRED = "expired"  # not paid in time; reserved stock went back
        REFUNDED = "refunded"  # paid, but the money went back (e.g. no stock left after a late payment)
        PAYMENT_FAILED = "payment_failed"  # the provider reported a failed payment; reserved stock went back

    id = models.CharField(max_length=32, primary_key=True, default=new_order_id)
    customer = models.ForeignKey("portal.Customer", on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField()
    unit_price_rupiah = models.PositiveIntegerField()
    fee_per_unit_rupiah = models.PositiveIntegerField()
    total_rupiah = models.BigIntegerField()
    provider = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT)
    reservation_ids = ArrayField(models.CharField(max_length=200), default=list)
    credit_ids = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    refunded_units = models.PositiveIntegerField(default=0)
    status_reason = models.CharField(max_length=200, blank=True)
    # What the provider answered when it opened the order's checkout (Midtrans: the Snap token and
    # redirect_url; Xendit: the invoice id and invoice_url), kept so it is opened once per order.
    checkout = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(name="order_quantity_positive", condition=Q(quantity__gt=0)),
            models.CheckConstraint(
                name="order_refund_within_quantity", condition=Q(refunded_units__lte=models.F("quantity"))
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return self.id


class Payment(models.Model):
    """One payment as the provider reported it; ``provider_ref`` makes every webhook idempotent."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REFUND_PENDING = "refund_pending"  # to be refunded; the refund sender tells the provider
        REFUNDED = "refunded"

    provider = models.CharField(max_length=32)
    provider_ref = models.CharField(max_length=100)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount_rupiah = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    event = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    refund_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-received_at",)
        constraints = [models.UniqueConstraint(fields=["provider", "provider_ref"], name="payment_provider_ref_unique")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_ref}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # units are back in stock; the money is on its way (refund sender)
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(max_length=32, primary_key=True, default=new_refund_id)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    request_key = models.CharField(max_length=255)
    units = models.PositiveIntegerField()
    amount_rupiah = models.BigIntegerField()
    fee_rupiah = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    provider_refund_ref = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["order", "request_key"], name="refund_request_key_unique")]

    def __str__(self) -> str:
        return self.id
