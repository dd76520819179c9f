"""Settlement report: per channel and period, from the ledger's posted transfers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from billing import quota
from billing.settlement import COLUMNS, period_bounds, settlement_rows, settlement_totals, write_csv
from tests.billing.factories import bare_channel, new_customer_id, unique

pytestmark = pytest.mark.django_db

ZONE = ZoneInfo(settings.TIME_ZONE)


def _today() -> dt.date:
    return timezone.now().astimezone(ZONE).date()


def _row(rows: list[dict], code: str) -> dict:
    return next(row for row in rows if row["channel_code"] == code)


def _busy_day(channel) -> None:
    """Allocate 10; sell 4 by a paid order and 1 by a late payment; one unpaid order lapses;
    stamp 2 (and one stamp fails); refund 1."""
    quota.allocate_stock(channel_id=channel.pk, units=10, reference=unique("dep"))
    customer = new_customer_id()
    paid = quota.reserve_stock(
        channel_id=channel.pk, customer_id=customer, order_ref=unique("o"), quantity=4, timeout=dt.timedelta(minutes=5)
    )
    quota.settle_reservation(reservation_ids=paid)
    quota.sell_from_stock(channel_id=channel.pk, customer_id=customer, order_ref=unique("late"), quantity=1)
    lapsed = quota.reserve_stock(
        channel_id=channel.pk, customer_id=customer, order_ref=unique("o"), quantity=2, timeout=dt.timedelta(minutes=5)
    )
    quota.release_reservation(reservation_ids=lapsed)
    for committed in (True, True, False):
        hold = unique("hold")
        quota.hold_quota(channel_id=channel.pk, customer_id=customer, hold_id=hold)
        (quota.commit_hold if committed else quota.release_hold)(hold_id=hold)
    quota.refund_units(channel_id=channel.pk, customer_id=customer, refund_ref=unique("r"), units=1)


def test_a_busy_day_is_reported_per_movement():
    channel = bare_channel()
    _busy_day(channel)

    rows = settlement_rows(date_from=_today(), date_to=_today())

    assert _row(rows, channel.code) == {
        "channel_code": channel.code,
        "channel_name": "Ledger test channel",
        "date_from": _today(),
        "date_to": _today(),
        "allocated": 10,
        "sold": 5,
        "used": 2,
        "refunded": 1,
        "net_sold": 4,
        "duty_due_rupiah": 20_000,
    }


def test_every_channel_has_a_row_even_without_movements(channels):
    quiet = bare_channel()
    rows = settlement_rows(date_from=_today(), date_to=_today())
    codes = [row["channel_code"] for row in rows]
    assert codes == sorted(codes)
    assert {"alpha", "beta", quiet.code} <= set(codes)
    assert "issuer" not in codes
    assert _row(rows, quiet.code)["allocated"] == 0 and _row(rows, quiet.code)["duty_due_rupiah"] == 0


def test_days_are_whole_days_in_jakarta_both_ends_included():
    channel = bare_channel()
    reference = unique("dep")
    quota.allocate_stock(channel_id=channel.pk, units=8, reference=reference)  # one transfer per shard
    day = dt.date(2024, 3, 10)
    late_evening = dt.datetime(2024, 3, 10, 23, 59, 30, tzinfo=ZONE)
    next_morning = dt.datetime(2024, 3, 11, 0, 0, 0, tzinfo=ZONE)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_transfer SET created_at = CASE WHEN id LIKE %s THEN %s ELSE %s END WHERE id LIKE %s",
            [f"allocate:{reference}:0", next_morning, late_evening, f"allocate:{reference}:%"],
        )

    assert _row(settlement_rows(date_from=day, date_to=day), channel.code)["allocated"] == 7
    assert _row(settlement_rows(date_from=day + dt.timedelta(days=1), date_to=day + dt.timedelta(days=1)),
                channel.code)["allocated"] == 1  # fmt: skip
    assert _row(settlement_rows(date_from=day, date_to=day + dt.timedelta(days=1)), channel.code)["allocated"] == 8
    assert _row(settlement_rows(date_from=day - dt.timedelta(days=5), date_to=day - dt.timedelta(days=1)),
                channel.code)["allocated"] == 0  # fmt: skip


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends before"):
        period_bounds(dt.date(2024, 2, 2), dt.date(2024, 2, 1))


def test_totals_and_csv():
    channel = bare_channel()
    _busy_day(channel)
    rows = [_row(settlement_rows(date_from=_today(), date_to=_today()), channel.code)]
    assert settlement_totals(rows) == {
        "allocated": 10, "sold": 5, "used": 2, "refunded": 1, "net_sold": 4, "duty_due_rupiah": 20_000,
    }  # fmt: skip
    out = io.StringIO()
    write_csv(rows, out)
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == list(COLUMNS)
    assert parsed[1] == [channel.code, "Ledger test channel", _today().isoformat(), _today().isoformat(),
                         "10", "5", "2", "1", "4", "20000"]  # fmt: skip


def test_csv_cells_that_a_spreadsheet_would_run_are_defused():
    out = io.StringIO()
    row = dict.fromkeys(COLUMNS, 0) | {"channel_code": "x", "channel_name": "=HYPERLINK(1)", "net_sold": -3}
    write_csv([row], out)
    line = list(csv.reader(io.StringIO(out.getvalue())))[1]
    assert line[1] == "'=HYPERLINK(1)"
    assert line[COLUMNS.index("net_sold")] == "-3"  # a negative number stays a number


def test_command_prints_csv(capsys):
    channel = bare_channel()
    _busy_day(channel)
    call_command("settlement", "--from", _today().isoformat(), "--to", _today().isoformat(), "--csv")
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    mine = next(line for line in lines if line["channel_code"] == channel.code)
    assert (mine["used"], mine["duty_due_rupiah"]) == ("2", "20000")


def test_command_prints_a_table_with_totals_and_the_duty_basis(capsys):
    channel = bare_channel()
    _busy_day(channel)
    call_command("settlement", "--from", _today().isoformat(), "--to", _today().isoformat())
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(channel.code))
    assert line.split()[1:] == ["10", "5", "2", "1", "4", "20,000"]
    assert "TOTAL" in out
    assert "units used by completed stamps" in out


@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [("2024-13-01", "2024-12-31", "not a date"), ("2024-02-02", "2024-02-01", "before")],
)
def test_command_refuses_bad_dates(date_from, date_to, message):
    with pytest.raises(CommandError, match=message):
        call_command("settlement", "--from", date_from, "--to", date_to)
