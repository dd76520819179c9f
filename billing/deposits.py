"""Channel deposits: a channel prepays the stamp duty; the issuer confirms and allocates the units."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import quota
from billing.ledger.models import Deposit
from billing.retail.models import FACE_VALUE_RUPIAH
from kernel.errors import ApplicationError


class DepositError(ApplicationError):
    code = "deposit_refused"
    http_status = 409
    what_to_do = "The deposit's units or amount do not match, or its reference is used by another deposit."


def create_deposit(*, channel, units: int, reference: str, amount_rupiah: int | None = None) -> Deposit:
    if units <= 0:
        raise DepositError("A deposit is for a positive number of units.")
    amount = units * FACE_VALUE_RUPIAH if amount_rupiah is None else amount_rupiah
    if amount != units * FACE_VALUE_RUPIAH:
        raise DepositError(f"A deposit for {units} units is Rp {units * FACE_VALUE_RUPIAH:,} of stamp duty.")
    try:
        with transaction.atomic():
            return Deposit.objects.create(channel=channel, units=units, reference=reference, amount_rupiah=amount)
    except IntegrityError:
        existing = Deposit.objects.get(reference=reference)
        if existing.channel_id != channel.pk or existing.units != units:
            raise DepositError(f"The billing reference {reference!r} is already used for another deposit.") from None
        return existing


@transaction.atomic
def confirm_deposit(*, deposit_id: int, confirmed_by: str) -> Deposit:
    """Confirm the money arrived and allocate the units to the channel's stock. Idempotent."""
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    if deposit.status == Deposit.Status.CONFIRMED:
        return deposit
    if deposit.status != Deposit.Status.PENDING:
        raise DepositError(f"Deposit {deposit.reference} was {deposit.status}; it cannot be confirmed.")
    quota.allocate_stock(channel_id=deposit.channel_id, units=deposit.units, reference=f"deposit:{deposit.pk}")
    deposit.status = Deposit.Status.CONFIRMED
    deposit.confirmed_at = timezone.now()
    deposit.confirmed_by = confirmed_by
    deposit.save(update_fields=["status", "confirmed_at", "confirmed_by"])
    return deposit
