"""Reconciliation: every invariant of the quota flow, checked against the database as it is.

Each check returns a list of violations (empty = holds). ``reconcile()`` runs them all, stores the
outcome for the back office and returns it. The checks read committed data only and take no locks,
so they can run while the gateway serves traffic; a check on in-flight work (paid but not yet
credited) allows the sweeper's interval before calling it a violation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.ledger.models import ReconciliationRun
from staff.audit import record
from tenants.models import Channel

UNCREDITED_GRACE = timedelta(minutes=5)  # the sweeper runs every minute; allow a few rounds


@dataclass
class Check:
    name: str
    description: str
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def check_books_balance() -> Check:
    check = Check("books_balance", "Every transfer has a debit and a credit: all accounts sum to zero.")
    net, dp, cp = _rows(
        "SELECT coalesce(sum(credits_posted - debits_posted), 0), coalesce(sum(debits_pending), 0),"
        " coalesce(sum(credits_pending), 0) FROM ledger_account"
    )[0]
    if net != 0:
        check.violations.append(f"posted balances sum to {net}, not 0")
    if dp != cp:
        check.violations.append(f"pending debits {dp} != pending credits {cp}")
    return check


def check_account_totals_match_transfers() -> Check:
    check = Check("account_totals", "Each account's running totals equal the sum of its transfers.")
    rows = _rows(
        """
        WITH moves AS (
            SELECT debit_account_id AS account, amount AS dpost, 0 AS cpost, 0 AS dpend, 0 AS cpend
              FROM ledger_transfer WHERE state = 'posted'
            UNION ALL SELECT credit_account_id, 0, amount, 0, 0 FROM ledger_transfer WHERE state = 'posted'
            UNION ALL SELECT t.debit_account_id, 0, 0, t.amount, 0
                        FROM ledger_pending p JOIN ledger_transfer t ON t.id = p.transfer_id
            UNION ALL SELECT t.credit_account_id, 0, 0, 0, t.amount
                        FROM ledger_pending p JOIN ledger_transfer t ON t.id = p.transfer_id
        ), sums AS (
            SELECT account, sum(dpost) dpost, sum(cpost) cpost, sum(dpend) dpend, sum(cpend) cpend
              FROM moves GROUP BY account
        )
        SELECT a.code, a.debits_posted, coalesce(s.dpost, 0), a.credits_posted, coalesce(s.cpost, 0),
               a.debits_pending, coalesce(s.dpend, 0), a.credits_pending, coalesce(s.cpend, 0)
          FROM ledger_account a LEFT JOIN sums s ON s.account = a.id
         WHERE a.debits_posted <> coalesce(s.dpost, 0) OR a.credits_posted <> coalesce(s.cpost, 0)
            OR a.debits_pending <> coalesce(s.dpend, 0) OR a.credits_pending <> coalesce(s.cpend, 0)
         LIMIT 50
        """
    )
    for code, *values in rows:
        check.violations.append(f"account {code}: totals {values[0::2]} but transfers say {values[1::2]}")
    return check


def check_no_negative_balance() -> Check:
    check = Check("no_negative_balance", "No account that may not be overdrawn is below zero.")
    for code, available in _rows(
        "SELECT code, credits_posted - debits_posted - debits_pending FROM ledger_account"
        " WHERE no_overdraft AND credits_posted - debits_posted - debits_pending < 0 LIMIT 50"
    ):
        check.violations.append(f"account {code} has {available}")
    return check


def check_units_conserved() -> Check:
    check = Check(
        "units_conserved",
        "For every channel: units allocated from the mint = its stock + its customers' wallets + used "
        "(holds and reservations are inside those), and no unit crosses from one channel to another.",
    )
    rows = _rows(
        """
        WITH allocated AS (
            SELECT c.channel_id, sum(t.amount) AS units
              FROM ledger_transfer t
              JOIN ledger_account d ON d.id = t.debit_account_id AND d.kind = 'mint'
              JOIN ledger_account c ON c.id = t.credit_account_id
             WHERE t.state = 'posted'
             GROUP BY c.channel_id
        ), holding AS (
            SELECT channel_id, sum(credits_posted - debits_posted) AS units
              FROM ledger_account WHERE kind <> 'mint' GROUP BY channel_id
        )
        SELECT coalesce(a.channel_id, h.channel_id), coalesce(a.units, 0), coalesce(h.units, 0)
          FROM allocated a FULL JOIN holding h ON h.channel_id = a.channel_id
         WHERE coalesce(a.units, 0) <> coalesce(h.units, 0)
        """
    )
    for channel_id, allocated, holding in rows:
        check.violations.append(f"channel {channel_id}: allocated {allocated} but its accounts hold {holding}")
    crossing = _rows(
        "SELECT t.id FROM ledger_transfer t JOIN ledger_account d ON d.id = t.debit_account_id"
        " JOIN ledger_account c ON c.id = t.credit_account_id"
        " WHERE d.kind <> 'mint' AND d.channel_id IS DISTINCT FROM c.channel_id LIMIT 20"
    )
    for (transfer_id,) in crossing:
        check.violations.append(f"transfer {transfer_id} moves units between channels")
    return check


def _serial_model():
    try:
        return apps.get_model("issuer", "Serial")
    except LookupError:
        return None


def check_one_serial_per_committed_unit(channel_id: int | None = None) -> Check:
    check = Check("serials_match_commits", "Each committed stamping unit has exactly one used serial, per channel.")
    serial_model = _serial_model()
    if serial_model is None:
        check.violations.append("the serial registry is not installed")
        return check
    commits = dict(
        _rows(
            "SELECT a.channel_id, count(*) FROM ledger_transfer t JOIN ledger_account a ON a.id = t.debit_account_id"
            " WHERE t.kind = 'commit' AND a.kind = 'wallet' GROUP BY a.channel_id"
        )
    )
    used = {
        row["channel_id"]: row["n"]
        for row in serial_model.objects.filter(status="used", channel__kind=Channel.Kind.CHANNEL)
        .values("channel_id")
        .annotate(n=Count("id"))
    }
    scope = sorted(set(commits) | set(used)) if channel_id is None else [channel_id]
    for cid in scope:
        if commits.get(cid, 0) != used.get(cid, 0):
            check.violations.append(
                f"channel {cid}: {commits.get(cid, 0)} committed units, {used.get(cid, 0)} used serials"
            )
    return check


def check_no_serial_twice() -> Check:
    check = Check("no_serial_twice", "No serial number appears twice in the registry.")
    serial_model = _serial_model()
    if serial_model is None:
        return check
    table = serial_model._meta.db_table
    for serial, count in _rows(f"SELECT serial, count(*) FROM {table} GROUP BY serial HAVING count(*) > 1 LIMIT 50"):  # noqa: S608 - table name from the model
        check.violations.append(f"serial {serial} recorded {count} times")
    return check


def check_paid_orders_credited(now=None) -> Check:
    from billing.retail.models import Order

    check = Check("paid_orders_credited", "No paid order is left uncredited past the sweeper's interval.")
    cutoff = (now or timezone.now()) - UNCREDITED_GRACE
    for channel in _in_each_channel_schema():
        for order_id in Order.objects.filter(status=Order.Status.PAID, paid_at__lt=cutoff).values_list("pk", flat=True)[
            :50
        ]:
            check.violations.append(f"{channel.code}: order {order_id} paid but not credited")
    return check


REFUND_GRACE = timedelta(minutes=15)  # sent right after commit, retried by the sweeper every minute


def check_refunds_sent(now=None) -> Check:
    from billing.retail.models import Payment, Refund

    check = Check("refunds_sent", "No refund owed to a customer waits for the payment provider past the retries.")
    cutoff = (now or timezone.now()) - REFUND_GRACE
    for channel in _in_each_channel_schema():
        for refund_id in Refund.objects.filter(status=Refund.Status.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:50]:
            check.violations.append(f"{channel.code}: refund {refund_id} not yet paid back")
        for payment_id in Payment.objects.filter(
            status=Payment.Status.REFUND_PENDING, received_at__lt=cutoff
        ).values_list("pk", flat=True)[:50]:
            check.violations.append(f"{channel.code}: payment {payment_id} to refund not yet paid back")
    return check


def _in_each_channel_schema():
    """Yield every channel whose schema exists, with the connection inside that schema."""
    for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public"):
        if _schema_exists(channel.schema_name):
            with schema_context(channel.schema_name):
                yield channel


def _schema_exists(name: str) -> bool:
    return bool(_rows("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name]))


CHECKS = (
    check_books_balance,
    check_account_totals_match_transfers,
    check_no_negative_balance,
    check_units_conserved,
    check_one_serial_per_committed_unit,
    check_no_serial_twice,
    check_paid_orders_credited,
    check_refunds_sent,
)


def reconcile(*, store: bool = True, actor: Any = None) -> dict:
    """Run every check; with ``store`` keep the report for the back office. ``actor``: the staff member
    who asked for the run (audited with the stored run); the periodic task and commands pass none."""
    started = timezone.now()
    results = [check() for check in CHECKS]
    report = {
        "ok": all(c.ok for c in results),
        "started_at": started.isoformat(),
        "checks": [
            {"name": c.name, "description": c.description, "ok": c.ok, "violations": c.violations} for c in results
        ],
    }
    if store:
        with transaction.atomic():
            run = ReconciliationRun.objects.create(
                started_at=started, finished_at=timezone.now(), ok=report["ok"], report=report
            )
            if actor is not None:
                failed = [c["name"] for c in report["checks"] if not c["ok"]]
                record(actor, "reconciliation.run", run, ok=report["ok"], failed=failed)
    return report
