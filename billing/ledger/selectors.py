"""Ledger reads for screens and reports (nothing here writes): what the portal, the back office and the
storefront's ``/balance`` show comes from here, never from their own SQL on the ledger's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from billing.ledger.models import Deposit, ReconciliationRun


@dataclass(frozen=True)
class ChannelBalance:
    """Where a channel's allocated units are now. The five places add up to the allocation:
    ``allocated == available + reserved + in_wallets + held + used``; a refund moves units from a
    wallet back to ``available`` and is also counted, as a flow, in ``refunded``."""

    allocated: int  # every unit ever allocated to the channel
    available: int  # in stock and free to sell (refunded units included)
    reserved: int  # held by unpaid orders
    in_wallets: int  # in customer wallets, free for the customer to use
    held: int  # held in wallets by stamps in progress
    used: int  # spent on stamps
    refunded: int  # units ever returned from wallets to stock by refunds

    @property
    def sold(self) -> int:
        """Units sold to customers and not refunded: in wallets, held or used."""
        return self.in_wallets + self.held + self.used

    def parts(self) -> list[tuple[str, int]]:
        """The places that add up to ``allocated``, in the order screens show them."""
        return [
            ("available", self.available),
            ("reserved", self.reserved),
            ("in_wallets", self.in_wallets),
            ("held", self.held),
            ("used", self.used),
        ]


# Account totals per kind, and the posted single-phase transfers into the channel's stock by kind
# (``allocate`` from the mint, ``refund`` from a wallet), in one round trip.
_CHANNEL_BALANCE = """
SELECT 'account', kind,
       coalesce(sum(credits_posted), 0)::bigint, coalesce(sum(debits_posted), 0)::bigint,
       coalesce(sum(debits_pending), 0)::bigint
  FROM ledger_account WHERE channel_id = %(channel)s GROUP BY kind
UNION ALL
SELECT 'into_stock', t.kind, coalesce(sum(t.amount), 0)::bigint, 0, 0
  FROM ledger_transfer t JOIN ledger_account a ON a.id = t.credit_account_id
 WHERE a.channel_id = %(channel)s AND a.kind = 'stock' AND t.kind IN ('allocate', 'refund')
   AND t.state = 'posted'
 GROUP BY t.kind
UNION ALL
SELECT 'out_of_stock', t.kind, coalesce(sum(t.amount), 0)::bigint, 0, 0
  FROM ledger_transfer t JOIN ledger_account a ON a.id = t.debit_account_id
 WHERE a.channel_id = %(channel)s AND a.kind = 'stock' AND t.kind = 'refund_restored' AND t.state = 'posted'
 GROUP BY t.kind
"""


def channel_balance(*, channel_id: int) -> ChannelBalance:
    """The one reading of a channel's figures: the portal dashboard, the back office and
    ``GET /api/v1/balance`` all show these."""
    with connection.cursor() as cursor:
        cursor.execute(_CHANNEL_BALANCE, {"channel": channel_id})
        rows = cursor.fetchall()
    accounts = {
        kind: (credits, debits, pending) for source, kind, credits, debits, pending in rows if source == "account"
    }
    into_stock = {kind: amount for source, kind, amount, _, _ in rows if source == "into_stock"}
    out_of_stock = {kind: amount for source, kind, amount, _, _ in rows if source == "out_of_stock"}
    stock = accounts.get("stock", (0, 0, 0))
    wallet = accounts.get("wallet", (0, 0, 0))
    used = accounts.get("used", (0, 0, 0))
    return ChannelBalance(
        allocated=into_stock.get("allocate", 0),
        available=stock[0] - stock[1] - stock[2],
        reserved=stock[2],
        in_wallets=wallet[0] - wallet[1] - wallet[2],
        held=wallet[2],
        used=used[0],
        # (a refund the provider refused gave its units back: it is not a refund)
        refunded=into_stock.get("refund", 0) - out_of_stock.get("refund_restored", 0),
    )


# How each ledger row changes a stock account's *available* units (posted - posted debits - pending
# debits), at the time the row was written:
#   posted single-phase transfer: +amount credited (allocate, refund), -amount debited (sell);
#   a pending debit (a reservation, whatever became of it later): -amount when it was made;
#   the posting of a pending debit (settle): no change; its voiding (unreserve, expire): +amount.
_STOCK_DELTAS = """
SELECT a.channel_id, date_bin(%(bucket)s, t.created_at, %(origin)s) AS b,
       sum(CASE WHEN t.state = 'voided' THEN t.amount
                WHEN t.state = 'posted' AND t.pending_id IS NULL THEN -t.amount
                WHEN t.state = 'pending' THEN -t.amount
                ELSE 0 END)::bigint
  FROM ledger_transfer t JOIN ledger_account a ON a.id = t.debit_account_id AND a.kind = 'stock'
 WHERE t.created_at >= %(origin)s
 GROUP BY 1, 2
UNION ALL
SELECT a.channel_id, date_bin(%(bucket)s, t.created_at, %(origin)s) AS b,
       sum(CASE WHEN t.state = 'posted' AND t.pending_id IS NULL THEN t.amount ELSE 0 END)::bigint
  FROM ledger_transfer t JOIN ledger_account a ON a.id = t.credit_account_id AND a.kind = 'stock'
 WHERE t.created_at >= %(origin)s
 GROUP BY 1, 2
"""


def stock_changes_per_bucket(*, bucket: timedelta, origin: datetime) -> list[tuple[int, datetime, int]]:
    """(channel id, bucket start, change of available stock) for every bucket since ``origin`` with
    ledger rows, by when each row was written (see the rules above)."""
    with connection.cursor() as cursor:
        cursor.execute(_STOCK_DELTAS, {"bucket": bucket, "origin": origin})
        return cursor.fetchall()


def deposits_for_listing(*, status: str = ""):
    """Deposits with their channels, newest first; only ``status``'s when it is one."""
    deposits = Deposit.objects.select_related("channel").order_by("-created_at")
    if status in Deposit.Status.values:
        deposits = deposits.filter(status=status)
    return deposits


def pending_deposit_count() -> int:
    return Deposit.objects.filter(status=Deposit.Status.PENDING).count()


def large_deposits(*, min_units: int, since, limit: int = 10) -> list[Deposit]:
    """Deposits of at least ``min_units``: every pending one first (oldest first: the longest waiting on
    top), then those recorded since ``since`` that were confirmed or rejected (newest first)."""
    large = Deposit.objects.select_related("channel").filter(units__gte=min_units)
    pending = list(large.filter(status=Deposit.Status.PENDING).order_by("created_at")[:limit])
    done = large.exclude(status=Deposit.Status.PENDING).filter(created_at__gte=since).order_by("-created_at")
    return pending + list(done[: max(0, limit - len(pending))])


def reconciliation_runs(limit: int = 15) -> list:
    """The latest reconciliation runs, newest first."""
    return list(ReconciliationRun.objects.all()[:limit])
