"""Settlement report: what each channel moved in a period, and the stamp duty that falls due.

Read from the ledger's posted transfers (``created_at`` is when the movement happened):

- **allocated**: units the issuer allocated to the channel's stock (``allocate``, against deposits);
- **sold**: units that reached customer wallets - settled reservations of paid orders (``settle``)
  and late payments credited straight from stock (``sell``);
- **used**: units spent by completed stamps (``commit``);
- **refunded**: unused units returned from wallets to the channel's stock (``refund``).

Stamp duty due is ``used x FACE_VALUE_RUPIAH``: the duty attaches to a stamped document, and a
unit sold but not yet used may still be refunded (within the channel's refund window), so it is
not final until it is used. The report states this basis next to the figures.

Dates are whole days in ``settings.TIME_ZONE``, both ends included.
"""

from __future__ import annotations

import csv
import datetime as dt
from typing import IO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from billing.retail.models import FACE_VALUE_RUPIAH
from tenants.models import Channel

DUTY_BASIS = (
    f"Stamp duty due = units used by completed stamps x Rp {FACE_VALUE_RUPIAH:,}".replace(",", ".")
    + ". Units sold but not yet used can still be refunded, so they are not counted until they are used."
)
COLUMNS = (
    "channel_code",
    "channel_name",
    "date_from",
    "date_to",
    "allocated",
    "sold",
    "used",
    "refunded",
    "net_sold",
    "duty_due_rupiah",
)
_KIND_COLUMN = {"allocate": "allocated", "settle": "sold", "sell": "sold", "commit": "used", "refund": "refunded"}


def period_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the whole days ``date_from`` .. ``date_to`` in the project's time zone."""
    if date_to < date_from:
        raise ValueError("the period ends before it starts")
    zone = ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def settlement_rows(*, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """One row per channel (every channel, in code order, zeros included) for the period."""
    start, end = period_bounds(date_from, date_to)
    with connection.cursor() as cursor:
        # Every movement's credit account carries the channel (stock, wallet or used units).
        cursor.execute(
            """
            SELECT c.channel_id, t.kind, coalesce(sum(t.amount), 0)::bigint
              FROM ledger_transfer t
              JOIN ledger_account c ON c.id = t.credit_account_id
             WHERE t.state = 'posted' AND t.kind = ANY(%s)
               AND t.created_at >= %s AND t.created_at < %s
             GROUP BY c.channel_id, t.kind
            """,
            [list(_KIND_COLUMN), start, end],
        )
        totals = cursor.fetchall()
    figures: dict[int, dict[str, int]] = {}
    for channel_id, kind, amount in totals:
        row = figures.setdefault(channel_id, dict.fromkeys(set(_KIND_COLUMN.values()), 0))
        row[_KIND_COLUMN[kind]] += amount
    rows = []
    for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).order_by("code"):
        numbers = figures.get(channel.pk, dict.fromkeys(set(_KIND_COLUMN.values()), 0))
        rows.append(
            {
                "channel_code": channel.code,
                "channel_name": channel.name,
                "date_from": date_from,
                "date_to": date_to,
                "allocated": numbers["allocated"],
                "sold": numbers["sold"],
                "used": numbers["used"],
                "refunded": numbers["refunded"],
                "net_sold": numbers["sold"] - numbers["refunded"],
                "duty_due_rupiah": numbers["used"] * FACE_VALUE_RUPIAH,
            }
        )
    return rows


def settlement_totals(rows: list[dict]) -> dict:
    """The sums of the numeric columns of ``rows``."""
    keys = ("allocated", "sold", "used", "refunded", "net_sold", "duty_due_rupiah")
    return {key: sum(row[key] for row in rows) for key in keys}


def _cell(value) -> str:
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not text.lstrip("-").isdigit() else text


def write_csv(rows: list[dict], out: IO[str]) -> None:
    """The report as CSV (one header line, one line per channel)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[column]) for column in COLUMNS])
