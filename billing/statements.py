"""A channel's monthly statement: what the issuer allocated to it, what it sold, what was refunded
and used, and the stamp duty owed to the treasury for the month.

The figures are the settlement report's row for the channel (``billing.settlement.settlement_rows``
over the month's whole days): the statement cannot differ from the issuer's report, to the unit. The
daily sales behind the statement's picture are read from the same posted transfers.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from django.db import connection

from billing.retail.models import FACE_VALUE_RUPIAH
from billing.settlement import DUTY_BASIS, period_bounds, settlement_rows

_SOLD_KINDS = ["settle", "sell"]  # as billing.settlement counts "sold"


@dataclass(frozen=True)
class Statement:
    channel_code: str
    channel_name: str
    year: int
    month: int
    date_from: dt.date
    date_to: dt.date
    figures: dict  # the settlement row: allocated, sold, used, refunded, net_sold, duty_due_rupiah
    days: list[dt.date]
    sold_per_day: list[int]
    basis: str = DUTY_BASIS
    face_value_rupiah: int = FACE_VALUE_RUPIAH

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def month_days(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _sold_per_day(channel_id: int, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
    start, end = period_bounds(date_from, date_to)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (t.created_at AT TIME ZONE %s)::date, coalesce(sum(t.amount), 0)::bigint
              FROM ledger_transfer t
              JOIN ledger_account c ON c.id = t.credit_account_id
             WHERE t.state = 'posted' AND t.kind = ANY(%s) AND c.channel_id = %s
               AND t.created_at >= %s AND t.created_at < %s
             GROUP BY 1
            """,
            [str(start.tzinfo), _SOLD_KINDS, channel_id, start, end],
        )
        return dict(cursor.fetchall())


def channel_statement(*, channel, year: int, month: int) -> Statement:
    date_from, date_to = month_days(year, month)
    row = next(r for r in settlement_rows(date_from=date_from, date_to=date_to) if r["channel_code"] == channel.code)
    figures = {key: row[key] for key in ("allocated", "sold", "used", "refunded", "net_sold", "duty_due_rupiah")}
    per_day = _sold_per_day(channel.pk, date_from, date_to)
    days = [date_from + dt.timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    return Statement(
        channel_code=channel.code, channel_name=channel.name, year=year, month=month, date_from=date_from,
        date_to=date_to, figures=figures, days=days, sold_per_day=[per_day.get(day, 0) for day in days],
    )  # fmt: skip


STATEMENT_COLUMNS = ("month", "channel_code", "allocated", "sold", "refunded", "net_sold", "used", "duty_due_rupiah")


def statement_csv_rows(statement: Statement) -> list[list]:
    """The statement as CSV rows: the totals, then the sales of each day."""
    f = statement.figures
    rows: list[list] = [list(STATEMENT_COLUMNS)]
    rows.append([statement.label, statement.channel_code, f["allocated"], f["sold"], f["refunded"], f["net_sold"],
                 f["used"], f["duty_due_rupiah"]])  # fmt: skip
    rows.append([])
    rows.append(["date", "sold"])
    rows.extend([day.isoformat(), sold] for day, sold in zip(statement.days, statement.sold_per_day, strict=True))
    return rows
