"""Ledger operations. Every write goes through here; see ``billing.ledger.sql`` for the semantics.

All functions are keyword-only. Outside a transaction each call is its own short transaction (one
round trip); inside ``transaction.atomic`` it joins the caller's transaction, so a ledger movement
and the rows that explain it (an order, a stamp) commit or fail together.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, connection, transaction

from billing.ledger.errors import SQLSTATE_ERRORS, AccountNotFound, LedgerError
from billing.ledger.models import Account, Transfer
from billing.ledger.selectors import ChannelBalance, channel_balance  # noqa: F401 - the one reading, re-exported for domain callers
from kernel.db import raw_cursor

STOCK_SHARDS = 8  # a channel's stock and used-units are spread over this many rows (hot-row relief)
USED_SHARDS = 8


@dataclass(frozen=True)
class TransferResult:
    id: str
    created: bool  # False: the same transfer had already been made (an idempotent replay)


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None)


def _call(sql: str, params: list, *, isolate: bool = True, prepared: bool = False) -> str:
    """Run one ledger function. Inside a transaction the call runs in a savepoint (``isolate``), so a
    refusal leaves the caller's transaction usable; a caller that lets every ledger error abort its
    transaction anyway may pass ``isolate=False`` and save two round trips.

    ``prepared`` (text parameters only, the function schema-qualified): a statement every stamp
    runs, prepared once per connection (``kernel.db.raw_cursor``) when it runs without a savepoint."""
    try:
        if isolate and connection.in_atomic_block:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchone()[0]
        if prepared:
            with raw_cursor() as cursor:
                cursor.execute(sql, params, prepare=True)
                return cursor.fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]
    except DatabaseError as exc:
        error = error_for(exc)
        if error is None:
            raise
        raise error from exc


def error_for(exc: DatabaseError) -> LedgerError | None:
    """The ledger's refusal ``exc`` carries (a ledger function's SQLSTATE), or None: for a caller that
    runs a ledger function inside a statement of its own (``stamping.sql``'s ``stamping_recorded``)."""
    error = SQLSTATE_ERRORS.get(_sqlstate(exc) or "")
    if error is None:
        return None
    if error is AccountNotFound:
        forget_cached_accounts()  # a cached id from a rolled-back transaction: look it up afresh
    return error(_MESSAGES[error.code], extra={"ledger_detail": str(exc.__cause__ or exc).splitlines()[0]})


_MESSAGES = {
    "idempotency_key_reused": "This id was already used for a different movement of units.",
    "insufficient_balance": "There are not enough units available for this.",
    "hold_not_found": "There is no such hold.",
    "hold_already_committed": "This hold was already committed.",
    "hold_already_released": "This hold was already released.",
    "hold_expired": "This hold timed out and can no longer be committed.",
    "account_not_found": "There is no such ledger account.",
}


def create_transfer(
    *,
    id: str,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    kind: str,
    pending: bool = False,
    timeout: timedelta | None = None,
    data: dict | None = None,
    isolate: bool = True,
) -> TransferResult:
    if amount <= 0:
        raise LedgerError("A transfer moves a positive whole number of units.")
    outcome = _call(
        "SELECT ledger_create_transfer(%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        [
            id,
            debit_account_id,
            credit_account_id,
            amount,
            kind,
            pending,
            int(timeout.total_seconds()) if timeout is not None else None,
            json.dumps(data or {}),
        ],
        isolate=isolate,
    )
    return TransferResult(id=id, created=outcome == "created")


def hold_unit(
    *, id: str, wallet_account_id: int, used_account_id: int, timeout: timedelta, isolate: bool = True
) -> TransferResult:
    """One unit of a wallet held for a stamp (``ledger_hold_unit``: the one definition of a hold,
    which the stamp intake calls too)."""
    outcome = _call(
        "SELECT ledger_hold_unit(%s, %s, %s, %s)",
        [id, wallet_account_id, used_account_id, int(timeout.total_seconds())],
        isolate=isolate,
    )
    return TransferResult(id=id, created=outcome == "created")


_POST_PENDING = 'SELECT "public".ledger_resolve_pending(%s::text, %s::text, true, false, %s::text, %s::jsonb)'


def post_pending(
    *, id: str, pending_id: str, kind: str = "post", data: dict | None = None, isolate: bool = True
) -> TransferResult:
    outcome = _call(
        _POST_PENDING,
        [id, pending_id, kind, json.dumps(data or {})],
        isolate=isolate,
        prepared=True,  # (each stamp's commit)
    )
    return TransferResult(id=id, created=outcome != "exists")


def void_pending(*, id: str, pending_id: str, kind: str = "void", data: dict | None = None) -> TransferResult:
    outcome = _call(
        "SELECT ledger_resolve_pending(%s, %s, false, true, %s, %s::jsonb)",
        [id, pending_id, kind, json.dumps(data or {})],
    )
    return TransferResult(id=id, created=outcome != "exists")


# --------------------------------------------------------------------------- accounts

_account_ids: dict[str, int] = {}  # code -> id; account ids never change once created


def account_id(
    *,
    code: str,
    kind: str,
    channel_id: int | None = None,
    customer_id: int | None = None,
    shard: int | None = None,
    no_overdraft: bool = True,
) -> int:
    """The id of the account ``code``, created on first use (concurrency-safe).

    Ids are cached per process once they are known to be committed: an account, once committed,
    never changes id. Inside a transaction the id is cached when that transaction commits, so a
    rolled-back creation never leaves a stale id behind.
    """
    cached = _account_ids.get(code)
    if cached is not None:
        return cached
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM ledger_account WHERE code = %s", [code])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                """
                INSERT INTO ledger_account (code, kind, channel_id, customer_id, shard, no_overdraft,
                                            debits_pending, debits_posted, credits_pending, credits_posted,
                                            created_at)
                VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 0, 0, now())
                ON CONFLICT (code) DO NOTHING
                """,
                [code, kind, channel_id, customer_id, shard, no_overdraft],
            )
            cursor.execute("SELECT id FROM ledger_account WHERE code = %s", [code])
            row = cursor.fetchone()
    found = row[0]
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _account_ids.__setitem__(code, found))
    else:
        _account_ids[code] = found
    return found


def forget_cached_accounts() -> None:
    _account_ids.clear()


def mint_account_id() -> int:
    return account_id(code="mint", kind=Account.Kind.MINT, no_overdraft=False)


def stock_account_id(*, channel_id: int, shard: int) -> int:
    return account_id(code=f"stock:{channel_id}:{shard}", kind=Account.Kind.STOCK, channel_id=channel_id, shard=shard)


def used_account_id(*, channel_id: int, shard: int) -> int:
    return account_id(code=f"used:{channel_id}:{shard}", kind=Account.Kind.USED, channel_id=channel_id, shard=shard)


def wallet_code(*, channel_id: int, customer_id: int) -> str:
    """The code of a customer's wallet account (looked up by code where the id is not cached)."""
    return f"wallet:{channel_id}:{customer_id}"


def wallet_account_id(*, channel_id: int, customer_id: int) -> int:
    return account_id(
        code=wallet_code(channel_id=channel_id, customer_id=customer_id),
        kind=Account.Kind.WALLET,
        channel_id=channel_id,
        customer_id=customer_id,
    )


def random_shards(count: int) -> list[int]:
    """Shard numbers in a random order, so concurrent takers start at different rows."""
    start = secrets.randbelow(count)
    return [(start + i) % count for i in range(count)]


def stock_available(*, channel_id: int) -> int:
    """Units in the channel's stock free to sell (one indexed read of its shard rows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(credits_posted - debits_posted - debits_pending), 0)::bigint FROM ledger_account"
            " WHERE channel_id = %s AND kind = 'stock'",
            [channel_id],
        )
        return cursor.fetchone()[0]


def get_transfer(transfer_id: str) -> Transfer | None:
    return Transfer.objects.filter(pk=transfer_id).first()
