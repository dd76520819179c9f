"""Helpers that make ledger fixtures with unique ids, so tests never collide with each other."""

from __future__ import annotations

import itertools
import secrets

from billing import quota
from billing.ledger import services as ledger

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}-{next(_counter)}"


def new_customer_id() -> int:
    return secrets.randbelow(10**12) + 10**6


def funded_wallet(*, channel_id: int, units: int) -> int:
    """A fresh customer whose wallet holds ``units`` (allocated, reserved, settled)."""
    customer_id = new_customer_id()
    quota.allocate_stock(channel_id=channel_id, units=units, reference=unique("dep"))
    order = unique("order")
    reservations = quota.reserve_stock(
        channel_id=channel_id,
        customer_id=customer_id,
        order_ref=order,
        quantity=units,
        timeout=quota.DEFAULT_HOLD_TIMEOUT,
    )
    quota.settle_reservation(reservation_ids=reservations)
    return customer_id


def wallet(channel_id: int, customer_id: int) -> dict[str, int]:
    return quota.wallet_balance(channel_id=channel_id, customer_id=customer_id)


def global_sums() -> tuple[int, int, int]:
    """(net posted, debits pending, credits pending) over every account: (0, x, x) when balanced."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(credits_posted - debits_posted), 0)::bigint,"
            " coalesce(sum(debits_pending), 0)::bigint, coalesce(sum(credits_pending), 0)::bigint"
            " FROM ledger_account"
        )
        return cursor.fetchone()


__all__ = ["funded_wallet", "global_sums", "ledger", "new_customer_id", "unique", "wallet"]


def bare_channel():
    """A channel row without a schema: enough for ledger-only tests that need a channel of their own."""
    from tenants.models import Channel

    code = f"l{secrets.token_hex(5)}"
    # bulk_create skips TenantMixin.save(), so no schema is created
    return Channel.objects.bulk_create([Channel(schema_name=code, code=code, name="Ledger test channel")])[0]
