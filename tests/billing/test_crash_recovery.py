"""SIGKILL in the middle of a credit and of a commit: after restart and sweep, nothing is lost or doubled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from billing import quota, reconciliation
from billing.providers import PaymentEvent
from billing.retail import services as retail
from billing.retail.models import Order, Payment
from tests.billing.factories import funded_wallet, unique
from tests.live import ROOT, child_env

pytestmark = pytest.mark.slow

LEDGER_AND_ORDER_CHECKS = (
    reconciliation.check_books_balance,
    reconciliation.check_account_totals_match_transfers,
    reconciliation.check_no_negative_balance,
    reconciliation.check_units_conserved,
    reconciliation.check_paid_orders_credited,
)


def run_until_killed(tmp_path: Path, point: str, *args: str) -> None:
    """Start the child, wait until it reaches ``point``, then SIGKILL it."""
    marker = tmp_path / f"marker-{unique('m')}"
    env = child_env() | {"GATEWAY_FAULT_POINT": point, "GATEWAY_FAULT_MARKER": str(marker)}
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tests.billing.crash_child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"child exited before {point}: {child.stdout.read().decode()}")
        assert time.monotonic() < deadline, "child never reached the fault point"
        time.sleep(0.05)
    child.kill()  # SIGKILL: no cleanup, no rollback by the client; the server sees a dead connection
    child.wait(timeout=10)


def assert_reconciled():
    for check in LEDGER_AND_ORDER_CHECKS:
        result = check()
        assert result.ok, (result.name, result.violations)


@pytest.fixture
def paid_order_setup(live_db):
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Crash")
        order = retail.create_order(channel=alpha, customer=customer, quantity=2)
    return alpha, customer, order


def redeliver(alpha, order, ref):
    with schema_context("alpha"):
        return retail.apply_payment_event(
            channel=alpha,
            provider_name="simulator",
            event=PaymentEvent(provider_ref=ref, order_id=order.pk, succeeded=True, amount_rupiah=order.total_rupiah),
        )


def test_killed_mid_credit_loses_nothing_and_the_redelivered_webhook_credits_once(tmp_path, paid_order_setup):
    alpha, customer, order = paid_order_setup
    ref = unique("pay")
    run_until_killed(tmp_path, "retail.credit.before_order_saved", "credit", order.pk, ref)

    # The transaction died with the process: no payment recorded, no units moved, the order still open.
    with schema_context("alpha"):
        assert Payment.objects.filter(provider_ref=ref).count() == 0
        assert Order.objects.get(pk=order.pk).status == "awaiting_payment"
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"] == 0
    assert_reconciled()

    # The provider got no 2xx, so it delivers again: credited exactly once.
    assert redeliver(alpha, order, ref).status == "credited"
    assert redeliver(alpha, order, ref).replayed
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"] == 2
    assert_reconciled()


def test_killed_after_the_credit_committed_a_redelivery_is_a_replay(tmp_path, paid_order_setup):
    alpha, customer, order = paid_order_setup
    ref = unique("pay")
    run_until_killed(tmp_path, "child.after_commit", "credit", order.pk, ref)
    outcome = redeliver(alpha, order, ref)
    assert outcome.replayed
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer.pk)["available"] == 2
    assert_reconciled()


def test_killed_mid_commit_leaves_the_hold_pending_then_commit_or_sweep_resolves_it_once(tmp_path, live_db):
    from django.db import connection

    from tests.billing.factories import bare_channel

    alpha = bare_channel()  # holds committed without serials must not land on a channel others reconcile
    customer = funded_wallet(channel_id=alpha.pk, units=2)
    first, second = unique("hold"), unique("hold")
    for hold_id in (first, second):
        quota.hold_quota(channel_id=alpha.pk, customer_id=customer, hold_id=hold_id)
        run_until_killed(tmp_path, "child.commit.inside_transaction", "commit", hold_id)
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer) == {"available": 0, "held": 2, "used": 0}
    assert_reconciled()

    # After restart: the retried job commits the first hold ...
    assert quota.commit_hold(hold_id=first).created
    # ... the second job is gone for good: its hold times out and the sweeper gives the unit back.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = %s", [second])
    quota.sweep_expired_pending()
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer) == {"available": 1, "held": 0, "used": 1}
    assert_reconciled()
