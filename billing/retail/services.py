"""Retail writes: orders, payment webhooks, sweepers, refunds.

These run in the channel's schema (the order, payment and refund rows) and move units through the
ledger in the public schema in the SAME transaction: an order is paid and its customer credited
together, or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.db import connection, transaction
from django.utils import timezone

from billing import quota
from billing.ledger.errors import InsufficientBalance, LedgerError, PendingAlreadyPosted
from billing.providers import (
    PaymentEvent,
    ProviderRefund,
    ProviderUnavailable,
    RefundStillPending,
    default_provider,
    get_provider,
)
from billing.retail.errors import (
    InsufficientStock,
    InvalidQuantity,
    OrderNotFound,
    OrderNotPayable,
    RefundNotAllowed,
)
from billing.retail.models import FACE_VALUE_RUPIAH, Order, Payment, Refund
from kernel import faults
from kernel.db import each_locked
from kernel.timestamps import utc_timestamp
from outbox import webhooks

logger = logging.getLogger(__name__)

MAX_UNITS_PER_ORDER = 1_000
ORDER_CURRENCY = "IDR"  # every price is in whole rupiah


@transaction.atomic
def create_order(*, channel, customer, quantity: int, provider: str | None = None) -> Order:
    """A customer's order for ``quantity`` units: priced, and ``quantity`` of stock reserved until it expires.
    ``provider`` None: the first provider the installation enables."""
    if not 1 <= quantity <= MAX_UNITS_PER_ORDER:
        raise InvalidQuantity(f"Order between 1 and {MAX_UNITS_PER_ORDER:,} units, not {quantity:,}.")
    provider = provider or default_provider()
    get_provider(provider)  # refuses an unknown provider before anything is written
    order = Order(
        customer=customer,
        quantity=quantity,
        unit_price_rupiah=FACE_VALUE_RUPIAH,
        fee_per_unit_rupiah=channel.service_fee_rupiah,
        total_rupiah=quantity * (FACE_VALUE_RUPIAH + channel.service_fee_rupiah),
        provider=provider,
        expires_at=timezone.now() + timedelta(minutes=channel.order_ttl_minutes),
    )
    try:
        order.reservation_ids = quota.reserve_stock(
            channel_id=channel.pk,
            customer_id=customer.pk,
            order_ref=f"{channel.pk}:{order.id}",
            quantity=quantity,
            timeout=timedelta(minutes=channel.order_ttl_minutes),
        )
    except InsufficientBalance as exc:
        raise InsufficientStock(
            "This channel has not enough e-Meterai in stock for this order right now. "
            "Try a smaller quantity or try again later."
        ) from exc
    order.save(force_insert=True)
    _signal_low_stock(channel=channel, taken=quantity)
    return order


def open_checkout(*, order_id: str, provider_name: str, base_url: str) -> str:
    """The provider's hosted checkout of an order awaiting payment (opened with the provider the first
    time, then the same): where the order's ``pay_url`` sends the customer."""
    provider = get_provider(provider_name)
    order = Order.objects.filter(pk=order_id, provider=provider_name).first()
    if order is None:
        raise OrderNotFound(f"No order {order_id!r} paid with {provider_name} in this channel.")
    if order.status != Order.Status.AWAITING_PAYMENT:
        raise OrderNotPayable(f"Order {order.pk} is {order.get_status_display().lower()}, not awaiting payment.")
    if not hasattr(provider, "checkout_url"):
        raise OrderNotFound(f"{provider_name} has no hosted checkout.")
    return provider.checkout_url(order=order, base_url=base_url)


def _order_payload(order: Order) -> dict:
    return {
        "order": {
            "id": order.pk,
            "customer": order.customer_id,
            "quantity": order.quantity,
            "total_rupiah": order.total_rupiah,
            "status": order.status,
            "status_reason": order.status_reason,
        }
    }


def _refund_payload(refund: Refund) -> dict:
    """A refund as the storefront API shows it (``GET /api/v1/refunds/{id}``), plus its customer."""
    return {
        "refund": {
            "id": refund.pk,
            "order": refund.order_id,
            "customer": refund.order.customer_id,
            "units": refund.units,
            "amount_rupiah": refund.amount_rupiah,
            "fee_rupiah": refund.fee_rupiah,
            "status": refund.status,
            "created_at": utc_timestamp(refund.created_at),
        }
    }


def _signal_low_stock(*, channel, taken: int) -> None:
    """``stock.low`` once, when an order takes the channel's available stock below its threshold."""
    from billing.ledger.services import stock_available

    available = stock_available(channel_id=channel.pk)
    if available < channel.low_stock_threshold <= available + taken:
        logger.warning("channel stock is low", extra={"available": available, "threshold": channel.low_stock_threshold})
        webhooks.enqueue_event(
            event_type="stock.low",
            payload={"stock": {"available": available, "threshold": channel.low_stock_threshold}},
        )


@dataclass(frozen=True)
class WebhookOutcome:
    order_id: str
    status: str
    replayed: bool
    note: str = ""


def handle_payment_webhook(*, channel, provider_name: str, body: bytes, headers) -> WebhookOutcome:
    """Verify, record and act on a provider's webhook. Idempotent by the provider's payment reference."""
    provider = get_provider(provider_name)
    event = provider.parse_webhook(body=body, headers=headers)
    return apply_payment_event(channel=channel, provider_name=provider_name, event=event)


@transaction.atomic
def apply_payment_event(*, channel, provider_name: str, event: PaymentEvent) -> WebhookOutcome:
    order = Order.objects.select_for_update().filter(pk=event.order_id).first()
    if order is None:
        raise OrderNotFound(f"No order {event.order_id!r} in this channel.")
    if event.state == PaymentEvent.PENDING:
        # Not money yet (or nothing that changes the order): nothing is recorded, so the payment's
        # final state, whenever it comes, is applied as the first.
        return WebhookOutcome(order_id=order.pk, status=order.status, replayed=False, note="payment pending")
    payment, created = Payment.objects.get_or_create(
        provider=provider_name,
        provider_ref=event.provider_ref,
        defaults={
            "order": order,
            "amount_rupiah": event.amount_rupiah,
            "status": Payment.Status.SUCCEEDED if event.succeeded else Payment.Status.FAILED,
            "event": event.raw,
        },
    )
    if not created:
        if not (event.succeeded and payment.status == Payment.Status.FAILED and payment.order_id == order.pk):
            return WebhookOutcome(order_id=order.pk, status=order.status, replayed=True)
        # The provider now confirms as paid a payment it had reported failed (events out of order):
        # the money arrived, so it is applied now - never the other way round (a failure after a
        # success is a replay above and changes nothing).
        payment.status = Payment.Status.SUCCEEDED
        payment.amount_rupiah = event.amount_rupiah
        payment.event = event.raw
        payment.save(update_fields=["status", "amount_rupiah", "event"])
    if not event.succeeded:
        if order.status == Order.Status.AWAITING_PAYMENT:  # (a failure after a success changes nothing)
            _close_failed_order(order, expired=event.state == PaymentEvent.EXPIRED)
        note = "payment expired" if event.state == PaymentEvent.EXPIRED else "payment failed"
        return WebhookOutcome(order_id=order.pk, status=order.status, replayed=False, note=note)

    exact = event.amount_rupiah == order.total_rupiah and event.currency == ORDER_CURRENCY
    if order.status in (Order.Status.CREDITED, Order.Status.PAID, Order.Status.REFUNDED) or not exact:
        # A second payment for an order already paid, or a wrong amount or currency: the money goes back.
        if exact:
            reason = "duplicate payment"
        elif event.currency != ORDER_CURRENCY:
            reason = f"currency {event.currency} is not the order's ({ORDER_CURRENCY})"
        else:
            reason = "amount does not match the order"
        _refund_payment(payment=payment, provider_name=provider_name, reason=reason)
        return WebhookOutcome(order_id=order.pk, status=order.status, replayed=False, note=f"refunded: {reason}")

    order.status = Order.Status.PAID
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "paid_at"])
    webhooks.enqueue_event(event_type="order.paid", payload=_order_payload(order))
    _credit(channel=channel, order=order, payment=payment, provider_name=provider_name)
    return WebhookOutcome(order_id=order.pk, status=order.status, replayed=False, note=order.status_reason)


def _release_reservation(order: Order) -> None:
    for rid in order.reservation_ids:
        try:
            quota.release_reservation(reservation_ids=[rid])
        except LedgerError:
            pass  # already voided by the ledger's own timeout sweep


def _close_failed_order(order: Order, *, expired: bool = False) -> None:
    """The provider reported the order's payment failed: the order is closed and its stock given back (a
    payment that still arrives later is credited from stock, as after an expiry, or refunded). A payment
    the provider let expire closes the order as expired, as the order's own expiry would."""
    _release_reservation(order)
    if expired:
        order.status = Order.Status.EXPIRED
        order.status_reason = "The payment expired at the provider; the reserved units went back to stock."
        order.save(update_fields=["status", "status_reason"])
        return
    order.status = Order.Status.PAYMENT_FAILED
    order.status_reason = (
        "The payment failed; nothing was charged and the reserved units went back to stock. "
        "Place a new order to try again."
    )
    order.save(update_fields=["status", "status_reason"])
    webhooks.enqueue_event(event_type="order.payment_failed", payload=_order_payload(order))


def _credit(*, channel, order: Order, payment: Payment | None, provider_name: str) -> None:
    """Move a paid order's units into the wallet: settle the reservation, or sell afresh if it lapsed."""
    try:
        quota.settle_reservation(reservation_ids=order.reservation_ids)
    except PendingAlreadyPosted:
        # Posted under another id: never happens with our deterministic ids. Crediting again from
        # stock would double-credit, so fail loudly; reconciliation reports the order.
        raise
    except LedgerError:
        # The reservation lapsed (expired or swept). Credit from stock if the channel still has it.
        try:
            order.credit_ids = quota.sell_from_stock(
                channel_id=channel.pk,
                customer_id=order.customer_id,
                order_ref=f"{channel.pk}:{order.pk}",
                quantity=order.quantity,
            )
        except InsufficientBalance:
            if payment is None:
                payment = order.payments.filter(status=Payment.Status.SUCCEEDED).first()
            if payment is not None:
                _refund_payment(
                    payment=payment, provider_name=provider_name, reason="no stock left after the order expired"
                )
            order.status = Order.Status.REFUNDED
            order.status_reason = (
                "Paid after the order expired and the channel had no stock left; the money was refunded."
            )
            order.save(update_fields=["status", "status_reason"])
            return
        order.status_reason = "Paid after the order's reservation ended; credited from stock."
    faults.point("retail.credit.before_order_saved")
    order.status = Order.Status.CREDITED
    order.credited_at = timezone.now()
    order.save(update_fields=["status", "credited_at", "credit_ids", "status_reason"])
    webhooks.enqueue_event(event_type="order.credited", payload=_order_payload(order))


def _refund_payment(*, payment: Payment, provider_name: str, reason: str) -> None:
    """Mark a payment to be refunded; the money goes back after commit (see ``send_pending_refunds``)."""
    payment.status = Payment.Status.REFUND_PENDING
    payment.refund_reason = reason
    payment.save(update_fields=["status", "refund_reason"])
    _send_after_commit()


def _send_after_commit() -> None:
    """Money leaves only after the rows that account for it are committed: a crash before the commit
    sends nothing; a crash after it leaves the row pending for the sender's next round."""
    schema = connection.schema_name
    # (published by name: the services never import the tasks, which call them)
    transaction.on_commit(lambda: current_app.send_task("billing.send_refunds", args=[schema]), robust=True)


def _ask_provider(provider_name: str, **refund) -> ProviderRefund | None:
    """The provider's answer to a refund, or None while it cannot be reached or has not finished it (the
    row stays pending, and the sender goes on with the next one)."""
    try:
        return get_provider(provider_name).refund(**refund)
    except (ProviderUnavailable, RefundStillPending) as exc:
        logger.warning(
            "refund not sent yet", extra={"provider": provider_name, "reference": refund["reference"], "why": str(exc)}
        )
        return None


def send_pending_refunds(*, channel, limit: int = 200) -> int:
    """Tell the provider about every refund still owed (order refunds and refundable payments).

    Each row is locked while its provider call runs, so two senders never send the same refund at
    once; a provider's refund is idempotent by our reference, so a crash between the provider's
    answer and our commit is repaired by sending the same reference again.
    """

    def send_refund(refund: Refund) -> bool:
        payment = refund.order.payments.filter(status=Payment.Status.SUCCEEDED).first()
        result = _ask_provider(
            refund.order.provider,
            provider_ref=payment.provider_ref if payment else "",
            amount_rupiah=refund.amount_rupiah,
            reference=f"refund:{refund.pk}",
        )
        if result is None:
            return False  # the provider cannot be reached, or is not done: pending for the next round
        if not result.succeeded:
            # No money went back: the units do, to the wallet they left, and the order may refund them
            # again. (Stock too low to give them back raises: the refund stays pending, nothing lost.)
            order = Order.objects.select_for_update().get(pk=refund.order_id)
            quota.restore_refunded_units(
                channel_id=channel.pk, customer_id=order.customer_id, refund_ref=f"{channel.pk}:{refund.pk}",
                units=refund.units,
            )  # fmt: skip
            order.refunded_units -= refund.units
            order.save(update_fields=["refunded_units"])
        refund.status = Refund.Status.SUCCEEDED if result.succeeded else Refund.Status.FAILED
        refund.provider_refund_ref = result.reference
        refund.save(update_fields=["status", "provider_refund_ref"])
        # in the row's transaction: the storefront hears of the outcome exactly when it is recorded
        webhooks.enqueue_event(event_type=f"refund.{refund.status}", payload=_refund_payload(refund))
        return result.succeeded

    def send_payment_refund(payment: Payment) -> bool:
        result = _ask_provider(
            payment.provider,
            provider_ref=payment.provider_ref,
            amount_rupiah=payment.amount_rupiah,
            reference=f"payment:{payment.pk}",
        )
        if result is not None and result.succeeded:
            payment.status = Payment.Status.REFUNDED
            payment.save(update_fields=["status"])
        return result is not None and result.succeeded

    pending_refunds = Refund.objects.filter(status=Refund.Status.PENDING).select_related("order")
    sent = each_locked(pending_refunds, limit=limit, handle=send_refund)
    pending_payments = Payment.objects.filter(status=Payment.Status.REFUND_PENDING)
    return sent + each_locked(pending_payments, limit=limit, handle=send_payment_refund)


# --------------------------------------------------------------------------- sweepers


def expire_orders(*, channel, now=None) -> int:
    """Unpaid orders past their expiry give their reserved stock back."""
    now = now or timezone.now()

    def expire(order: Order) -> bool:
        _release_reservation(order)
        order.status = Order.Status.EXPIRED
        order.save(update_fields=["status"])
        return True

    # (an order another sweeper or a webhook holds is skipped)
    unpaid = Order.objects.filter(status=Order.Status.AWAITING_PAYMENT, expires_at__lt=now)
    return each_locked(unpaid, limit=500, handle=expire)


def credit_paid_orders(*, channel) -> int:
    """Orders whose payment was recorded but whose units never reached the wallet get them now."""

    def credit(order: Order) -> bool:
        _credit(channel=channel, order=order, payment=None, provider_name=order.provider)
        return True

    return each_locked(Order.objects.filter(status=Order.Status.PAID), limit=500, handle=credit)


# --------------------------------------------------------------------------- refunds


def _unused_in_wallet(count: int) -> str:
    """What a refund of more units than the wallet holds is told, in good English for every count."""
    if count == 0:
        return "No unused units are in the wallet."
    return "Only 1 unused unit is in the wallet." if count == 1 else f"Only {count} unused units are in the wallet."


@transaction.atomic
def refund_order(*, channel, order_id: str, customer, units: int, request_key: str) -> Refund:
    """Refund ``units`` unused units of a credited order: units back to stock, money back less the fee."""
    order = Order.objects.select_for_update().filter(pk=order_id, customer=customer).first()
    if order is None:
        raise OrderNotFound(f"No order {order_id!r} for this customer.")
    existing = Refund.objects.filter(order=order, request_key=request_key).first()
    if existing is not None:
        if existing.units != units:
            raise RefundNotAllowed("This request key was already used for a refund of a different number of units.")
        return existing
    if order.status != Order.Status.CREDITED:
        raise RefundNotAllowed("Only a paid and credited order can be refunded.")
    window = timedelta(days=channel.refund_window_days)
    if order.credited_at is None or timezone.now() - order.credited_at > window:
        raise RefundNotAllowed(f"Refunds are possible within {channel.refund_window_days} days of purchase.")
    if units < 1 or units > order.quantity - order.refunded_units:
        left = order.quantity - order.refunded_units
        raise RefundNotAllowed(f"At most {left} {'unit' if left == 1 else 'units'} of this order can be refunded.")
    balance = quota.wallet_balance(channel_id=channel.pk, customer_id=customer.pk)
    if units > balance["available"]:
        raise RefundNotAllowed(_unused_in_wallet(balance["available"]))
    gross = units * (order.unit_price_rupiah + order.fee_per_unit_rupiah)
    fee = min(channel.refund_fee_rupiah, gross)
    refund = Refund(
        order=order,
        request_key=request_key,
        units=units,
        amount_rupiah=gross - fee,
        fee_rupiah=fee,
        status=Refund.Status.PENDING,
    )
    quota.refund_units(
        channel_id=channel.pk, customer_id=customer.pk, refund_ref=f"{channel.pk}:{refund.pk}", units=units
    )
    refund.save(force_insert=True)
    order.refunded_units += units
    order.save(update_fields=["refunded_units"])
    _send_after_commit()  # the money goes back once the units are back for sure
    return refund
