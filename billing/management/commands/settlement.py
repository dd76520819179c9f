"""``manage.py settlement --from 2025-01-01 --to 2025-01-31 [--csv]``"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from billing.settlement import DUTY_BASIS, settlement_rows, settlement_totals, write_csv


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


NUMBERS = ("allocated", "sold", "used", "refunded", "net_sold", "duty_due_rupiah")
HEADINGS = ("allocated", "sold", "used", "refunded", "net sold", "duty due (Rp)")


class Command(BaseCommand):
    help = "Per-channel settlement for a period: units allocated, sold, used, refunded and the stamp duty due."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD (included)")
        parser.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD (included)")
        parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    def handle(self, *args, **options):
        date_from, date_to = _date(options["date_from"]), _date(options["date_to"])
        if date_to < date_from:
            raise CommandError("--to is before --from.")
        rows = settlement_rows(date_from=date_from, date_to=date_to)
        if options["csv"]:
            write_csv(rows, self.stdout)
            return
        totals = settlement_totals(rows)
        table = [("channel", *HEADINGS)]
        table += [(row["channel_code"], *(f"{row[key]:,}" for key in NUMBERS)) for row in rows]
        table.append(("TOTAL", *(f"{totals[key]:,}" for key in NUMBERS)))
        widths = [max(len(cell) for cell in column) for column in zip(*table, strict=True)]
        self.stdout.write(f"Settlement {date_from.isoformat()} .. {date_to.isoformat()} (both days included)")
        for line in table:
            cells = [line[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True)]
            self.stdout.write("  ".join(cells).rstrip())
        self.stdout.write(DUTY_BASIS)
