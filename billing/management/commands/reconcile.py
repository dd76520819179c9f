"""``manage.py reconcile``: check every invariant of the quota flow; exit 1 on any violation."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from billing.reconciliation import reconcile


class Command(BaseCommand):
    help = "Check the ledger, units, serials and orders for consistency. Exits non-zero on a violation."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-store", action="store_true", help="do not record this run for the back office")

    def handle(self, *args, **options):
        report = reconcile(store=not options["no_store"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for check in report["checks"]:
                mark = self.style.SUCCESS("ok  ") if check["ok"] else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark} {check['name']}: {check['description']}")
                for violation in check["violations"]:
                    self.stdout.write(f"       - {violation}")
            self.stdout.write("All invariants hold." if report["ok"] else "Invariants are violated (see above).")
        if not report["ok"]:
            raise SystemExit(1)
