"""Reconciliation finds every kind of inconsistency and passes on a consistent ledger."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from billing import quota, reconciliation
from billing.deposits import confirm_deposit, create_deposit
from billing.ledger import services as ledger
from billing.ledger.models import Deposit, ReconciliationRun
from tests.billing.factories import funded_wallet, unique

pytestmark = pytest.mark.django_db

LEDGER_CHECKS = [
    reconciliation.check_books_balance,
    reconciliation.check_account_totals_match_transfers,
    reconciliation.check_no_negative_balance,
    reconciliation.check_units_conserved,
]


@pytest.fixture
def alpha(channels):
    return channels["alpha"]


def test_ledger_checks_pass_after_a_busy_day(alpha):
    customer = funded_wallet(channel_id=alpha.pk, units=4)
    for index in range(3):
        hold = unique("hold")
        quota.hold_quota(channel_id=alpha.pk, customer_id=customer, hold_id=hold)
        (quota.commit_hold if index % 2 == 0 else quota.release_hold)(hold_id=hold)
    quota.refund_units(channel_id=alpha.pk, customer_id=customer, refund_ref=unique("r"), units=1)
    assert all(check().ok for check in LEDGER_CHECKS)


def test_a_tampered_account_total_is_reported(alpha):
    customer = funded_wallet(channel_id=alpha.pk, units=2)
    account = ledger.wallet_account_id(channel_id=alpha.pk, customer_id=customer)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET credits_posted = credits_posted + 5 WHERE id = %s", [account])
    totals = reconciliation.check_account_totals_match_transfers()
    assert not totals.ok
    assert f"wallet:{alpha.pk}:{customer}" in totals.violations[0]
    assert not reconciliation.check_books_balance().ok
    assert not reconciliation.check_units_conserved().ok


def test_a_paid_order_left_uncredited_is_reported(alpha):
    from datetime import timedelta

    from django.utils import timezone

    from billing.retail import services as retail
    from billing.retail.models import Order
    from tenants.customers.models import Customer

    quota.allocate_stock(channel_id=alpha.pk, units=5, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="X")
        order = retail.create_order(channel=alpha, customer=customer, quantity=1)
        Order.objects.filter(pk=order.pk).update(status="paid", paid_at=timezone.now() - timedelta(hours=1))
    check = reconciliation.check_paid_orders_credited()
    assert [v for v in check.violations if order.pk in v]
    with schema_context("alpha"):
        retail.credit_paid_orders(channel=alpha)
    assert not [v for v in reconciliation.check_paid_orders_credited().violations if order.pk in v]


def test_reconcile_command_stores_its_run_and_exits_non_zero_on_violation(alpha, capsys):
    customer = funded_wallet(channel_id=alpha.pk, units=1)
    account = ledger.wallet_account_id(channel_id=alpha.pk, customer_id=customer)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET debits_posted = debits_posted + 1 WHERE id = %s", [account])
    runs = ReconciliationRun.objects.count()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile")
    assert exit_info.value.code == 1
    assert "FAIL account_totals" in capsys.readouterr().out
    assert ReconciliationRun.objects.count() == runs + 1
    assert ReconciliationRun.objects.first().ok is False


def test_a_confirmed_deposit_allocates_once(alpha):
    before = ledger.channel_balance(channel_id=alpha.pk).allocated
    deposit = create_deposit(channel=alpha, units=120, reference=unique("INV"), recorded_by="test")
    assert deposit.amount_rupiah == 120 * 10_000
    assert ledger.channel_balance(channel_id=alpha.pk).allocated == before  # not before confirmation
    confirm_deposit(deposit_id=deposit.pk, confirmed_by="test")
    confirm_deposit(deposit_id=deposit.pk, confirmed_by="test")
    assert ledger.channel_balance(channel_id=alpha.pk).allocated == before + 120
    assert Deposit.objects.get(pk=deposit.pk).status == "confirmed"
