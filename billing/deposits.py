"""Channel deposits: a channel prepays the stamp duty; the issuer confirms and allocates the units.

Maker-checker: one staff member records a deposit (permission ``ledger.record_deposit``), another
confirms it (``ledger.confirm_deposit``); the person who recorded a deposit can never confirm it.
Operators' commands (``manage.py deposit``, the demo seed) act as a named system actor, not as a
person: whoever runs them has the server and its database already. Every recording and confirmation
is written to the audit log in its own transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger.models import Deposit, TopUpRequest
from billing.ledger.selectors import channel_balance
from billing.retail.models import FACE_VALUE_RUPIAH
from kernel.errors import ApplicationError
from kernel.timestamps import utc_timestamp
from outbox.webhooks import enqueue_event
from staff.audit import actor_name, record

RECORD_PERMISSION = "ledger.record_deposit"
CONFIRM_PERMISSION = "ledger.confirm_deposit"


class DepositError(ApplicationError):
    code = "deposit_refused"
    http_status = 409
    what_to_do = "The deposit's units or amount do not match, or its reference is used by another deposit."


class DepositNotAllowed(ApplicationError):
    code = "deposit_not_allowed"
    http_status = 403
    title = "Not allowed to handle deposits"
    what_to_do = (
        "Recording a deposit needs the group “Stock recorders”, confirming one “Stock approvers”; "
        "ask an administrator to add you to the group."
    )


class DepositSamePerson(ApplicationError):
    code = "deposit_same_person"
    http_status = 403
    title = "A deposit needs a second person"
    what_to_do = "Ask another member of “Stock approvers” to confirm the deposit you recorded."


def _is_person(actor: Any) -> bool:
    return actor is not None and not isinstance(actor, str)


def _require(actor: Any, permission: str, doing: str) -> None:
    if _is_person(actor) and not actor.has_perm(permission):
        raise DepositNotAllowed(f"{actor.get_username()} may not {doing}.")


def create_deposit(
    *, channel, units: int, reference: str, recorded_by: Any, amount_rupiah: int | None = None
) -> Deposit:
    """Record a pending deposit. ``recorded_by``: the staff user, or a command's name. Idempotent per
    ``reference`` (the same deposit again returns the first one)."""
    _require(recorded_by, RECORD_PERMISSION, "record deposits")
    if units <= 0:
        raise DepositError("A deposit is for a positive number of units.")
    amount = units * FACE_VALUE_RUPIAH if amount_rupiah is None else amount_rupiah
    if amount != units * FACE_VALUE_RUPIAH:
        raise DepositError(f"A deposit for {units} units is Rp {units * FACE_VALUE_RUPIAH:,} of stamp duty.")
    try:
        with transaction.atomic():
            deposit = Deposit.objects.create(
                channel=channel,
                units=units,
                reference=reference,
                amount_rupiah=amount,
                recorded_by=actor_name(recorded_by),
                recorded_by_user=recorded_by if _is_person(recorded_by) else None,
            )
            record(
                recorded_by, "deposit.recorded", deposit,
                channel=channel.code, units=units, amount_rupiah=amount, reference=reference,
            )  # fmt: skip
            return deposit
    except IntegrityError:
        existing = Deposit.objects.get(reference=reference)
        if existing.channel_id != channel.pk or existing.units != units:
            raise DepositError(f"The billing reference {reference!r} is already used for another deposit.") from None
        return existing


@transaction.atomic
def confirm_deposit(*, deposit_id: int, confirmed_by: Any) -> Deposit:
    """Confirm the money arrived and allocate the units to the channel's stock. Idempotent.

    ``confirmed_by``: the staff user (who needs ``ledger.confirm_deposit`` and must not be the one
    who recorded it), or a command's name."""
    _require(confirmed_by, CONFIRM_PERMISSION, "confirm deposits")
    deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
    if deposit.status == Deposit.Status.CONFIRMED:
        return deposit
    if deposit.status != Deposit.Status.PENDING:
        raise DepositError(f"Deposit {deposit.reference} was {deposit.status}; it cannot be confirmed.")
    if _is_person(confirmed_by) and deposit.recorded_by_user_id == confirmed_by.pk:
        raise DepositSamePerson(
            f"You recorded deposit {deposit.reference}; another person must confirm it before its units are allocated."
        )
    quota.allocate_stock(channel_id=deposit.channel_id, units=deposit.units, reference=f"deposit:{deposit.pk}")
    deposit.status = Deposit.Status.CONFIRMED
    deposit.confirmed_at = timezone.now()
    deposit.confirmed_by = actor_name(confirmed_by)
    deposit.confirmed_by_user = confirmed_by if _is_person(confirmed_by) else None
    deposit.save(update_fields=["status", "confirmed_at", "confirmed_by", "confirmed_by_user"])
    record(
        confirmed_by, "deposit.confirmed", deposit,
        channel=deposit.channel.code, units=deposit.units, reference=deposit.reference,
        recorded_by=deposit.recorded_by,
    )  # fmt: skip
    _announce_credit(deposit)
    return deposit


def _announce_credit(deposit: Deposit) -> None:
    """In the confirmation's transaction: a top-up request behind the deposit is confirmed, and the
    channel's endpoints get ``stock.credited``."""
    topup = TopUpRequest.objects.filter(deposit=deposit).first()
    if topup is not None:
        topup.state = TopUpRequest.State.CONFIRMED
        topup.save(update_fields=["state"])
    available = channel_balance(channel_id=deposit.channel_id).available
    with schema_context(deposit.channel.schema_name):
        enqueue_event(
            event_type="stock.credited",
            payload={
                "stock": {
                    "units": deposit.units,
                    "deposit": deposit.reference,
                    "top_up_request": topup.pk if topup else None,
                    "transfer_reference": topup.transfer_reference if topup else None,
                    "available": available,
                    "credited_at": utc_timestamp(deposit.confirmed_at),
                }
            },
        )
