"""Quota movements in the product's words, on top of the ledger.

Units flow: mint -> channel stock (allocation against a deposit) -> customer wallet (a paid
order; reserved while unpaid) -> used (a committed stamp). Holds and reservations are pending
transfers that are posted or voided exactly once; ids are derived from the business object
(order, job, deposit) so that every retry of the same step is the same transfer.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction

from billing.ledger import services as ledger
from billing.ledger.errors import InsufficientBalance
from billing.ledger.models import Transfer

DEFAULT_HOLD_TIMEOUT = timedelta(minutes=30)


def _stock(channel_id: int, shard: int) -> int:
    return ledger.stock_account_id(channel_id=channel_id, shard=shard)


def _wallet(channel_id: int, customer_id: int) -> int:
    return ledger.wallet_account_id(channel_id=channel_id, customer_id=customer_id)


def _used(channel_id: int, customer_id: int) -> int:
    return ledger.used_account_id(channel_id=channel_id, shard=customer_id % ledger.USED_SHARDS)


def used_account(*, channel_id: int, customer_id: int) -> int:
    """The account a customer's held and spent units are credited to (one of the channel's used shards)."""
    return _used(channel_id, customer_id)


@transaction.atomic
def allocate_stock(*, channel_id: int, units: int, reference: str) -> int:
    """Move ``units`` from the issuer's mint to the channel's stock, spread over its shards.

    Returns how many units this call allocated (0 when ``reference`` was already allocated).
    """
    if units <= 0:
        raise InsufficientBalance("Allocate a positive number of units.")
    base, extra = divmod(units, ledger.STOCK_SHARDS)
    mint = ledger.mint_account_id()
    allocated = 0
    for shard in range(ledger.STOCK_SHARDS):
        amount = base + (1 if shard < extra else 0)
        if amount:
            result = ledger.create_transfer(
                id=f"allocate:{reference}:{shard}",
                debit_account_id=mint,
                credit_account_id=_stock(channel_id, shard),
                amount=amount,
                kind="allocate",
                data={"reference": reference},
            )
            allocated += amount if result.created else 0
    return allocated


def _take_from_stock(
    *,
    channel_id: int,
    wallet: int,
    quantity: int,
    id_prefix: str,
    kind: str,
    pending: bool,
    timeout: timedelta | None,
    data: dict,
) -> list[str]:
    """Move ``quantity`` from stock shards to ``wallet``; one shard if one has enough, else several.

    Idempotent: a retry with the same ``id_prefix`` finds the transfers it made before.
    """
    candidates = [f"{id_prefix}:{shard}" for shard in range(ledger.STOCK_SHARDS)]
    existing = sorted(Transfer.objects.filter(id__in=candidates, kind=kind).values_list("id", flat=True))
    if existing:
        return existing

    def take(shard: int, amount: int) -> str:
        transfer_id = f"{id_prefix}:{shard}"
        ledger.create_transfer(
            id=transfer_id,
            debit_account_id=_stock(channel_id, shard),
            credit_account_id=wallet,
            amount=amount,
            kind=kind,
            pending=pending,
            timeout=timeout,
            data=data,
        )
        return transfer_id

    with transaction.atomic():
        for shard in ledger.random_shards(ledger.STOCK_SHARDS):  # the common case: one shard covers it all
            try:
                return [take(shard, quantity)]
            except InsufficientBalance:
                continue
        # Split across shards, largest first; fail as a whole if the channel has too little.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT shard, credits_posted - debits_posted - debits_pending FROM ledger_account"
                " WHERE channel_id = %s AND kind = 'stock' ORDER BY 2 DESC",
                [channel_id],
            )
            balances = cursor.fetchall()
        remaining, made = quantity, []
        for shard, available in balances:
            amount = min(available, remaining)
            if amount > 0:
                made.append(take(shard, amount))
                remaining -= amount
        if remaining:
            raise InsufficientBalance(
                "The channel does not have enough stock for this order.", extra={"short_by": remaining}
            )
        return made


def reserve_stock(*, channel_id: int, customer_id: int, order_ref: str, quantity: int, timeout: timedelta) -> list[str]:
    """Reserve ``quantity`` of the channel's stock for an unpaid order (pending transfers)."""
    return _take_from_stock(
        channel_id=channel_id,
        wallet=_wallet(channel_id, customer_id),
        quantity=quantity,
        id_prefix=f"reserve:{order_ref}",
        kind="reserve",
        pending=True,
        timeout=timeout,
        data={"order": order_ref},
    )


def sell_from_stock(*, channel_id: int, customer_id: int, order_ref: str, quantity: int) -> list[str]:
    """Credit a wallet straight from stock (a payment that arrived after its reservation lapsed)."""
    return _take_from_stock(
        channel_id=channel_id,
        wallet=_wallet(channel_id, customer_id),
        quantity=quantity,
        id_prefix=f"sell:{order_ref}",
        kind="sell",
        pending=False,
        timeout=None,
        data={"order": order_ref},
    )


def settle_reservation(*, reservation_ids: list[str]) -> None:
    """Post an order's reservations: the units land in the customer's wallet."""
    with transaction.atomic():
        for rid in reservation_ids:
            ledger.post_pending(id=f"{rid}:post", pending_id=rid, kind="settle")


def release_reservation(*, reservation_ids: list[str]) -> None:
    with transaction.atomic():
        for rid in reservation_ids:
            ledger.void_pending(id=f"{rid}:void", pending_id=rid, kind="unreserve")


def hold_quota(
    *,
    channel_id: int,
    customer_id: int,
    hold_id: str,
    timeout: timedelta = DEFAULT_HOLD_TIMEOUT,
    isolate: bool = True,
) -> ledger.TransferResult:
    """Hold one unit of the customer's wallet for a stamp (pending wallet -> used).

    ``isolate=False``: a refusal aborts the caller's transaction (cheaper; for callers that abort anyway).
    """
    return ledger.hold_unit(
        id=hold_id,
        wallet_account_id=_wallet(channel_id, customer_id),
        used_account_id=_used(channel_id, customer_id),
        timeout=timeout,
        isolate=isolate,
    )


def commit_hold(*, hold_id: str, isolate: bool = True) -> ledger.TransferResult:
    """``isolate=False``: no savepoint around the call, for a caller whose transaction a refusal
    aborts anyway (two round trips fewer; see ``ledger.services._call``)."""
    return ledger.post_pending(id=commit_id(hold_id), pending_id=hold_id, kind=COMMIT_KIND, isolate=isolate)


COMMIT_KIND = "commit"


def commit_id(hold_id: str) -> str:
    """The id of the transfer that commits ``hold_id`` (for a caller that posts it in SQL of its own)."""
    return f"{hold_id}:commit"


def release_hold(*, hold_id: str) -> ledger.TransferResult:
    return ledger.void_pending(id=f"{hold_id}:release", pending_id=hold_id, kind="release")


def refund_units(*, channel_id: int, customer_id: int, refund_ref: str, units: int) -> ledger.TransferResult:
    """Return unused units from a wallet to the channel's stock."""
    return _refund_transfer(channel_id, customer_id, refund_ref, units, restore=False)


def restore_refunded_units(*, channel_id: int, customer_id: int, refund_ref: str, units: int) -> ledger.TransferResult:
    """A refund the provider refused: its units go back from the channel's stock to the wallet they
    came from (the customer keeps the units when the money cannot be paid back)."""
    return _refund_transfer(channel_id, customer_id, refund_ref, units, restore=True)


def _refund_transfer(channel_id: int, customer_id: int, refund_ref: str, units: int, *, restore: bool):
    wallet = _wallet(channel_id, customer_id)
    stock = _stock(channel_id, customer_id % ledger.STOCK_SHARDS)
    return ledger.create_transfer(
        id=f"refund:{refund_ref}:restored" if restore else f"refund:{refund_ref}",
        debit_account_id=stock if restore else wallet,
        credit_account_id=wallet if restore else stock,
        amount=units,
        kind="refund_restored" if restore else "refund",
        data={"refund": refund_ref},
    )


def wallet_balance(*, channel_id: int, customer_id: int) -> dict[str, int]:
    code = ledger.wallet_code(channel_id=channel_id, customer_id=customer_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credits_posted, debits_posted, debits_pending FROM ledger_account WHERE code = %s",
            [code],
        )
        row = cursor.fetchone()
    credits, debits, pending = row or (0, 0, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(t.amount), 0)::bigint FROM ledger_transfer t"
            " JOIN ledger_account a ON a.id = t.debit_account_id"
            " WHERE a.code = %s AND t.kind = 'commit'",
            [code],
        )
        used = cursor.fetchone()[0]
    return {"available": credits - debits - pending, "held": pending, "used": used}


def sweep_expired_pending(*, limit: int = 500) -> int:
    """Void pending transfers (holds and reservations) past their timeout.

    Safe on many workers at once: the void of each transfer is idempotent and serialised by the
    ledger, so two sweepers racing for the same hold make one void between them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM ledger_pending p JOIN ledger_transfer t ON t.id = p.transfer_id"
            " WHERE t.timeout_at < now() ORDER BY t.timeout_at LIMIT %s",
            [limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    voided = 0
    for pending_id in ids:
        try:
            result = ledger.void_pending(id=f"{pending_id}:expire", pending_id=pending_id, kind="expire")
        except ledger.LedgerError:
            continue  # resolved concurrently (posted before the timeout, or voided elsewhere)
        voided += int(result.created)
    return voided
