"""Ledger reads for screens and reports (nothing here writes): what the back office draws comes from
here, never from its own SQL on the ledger's tables."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection

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
