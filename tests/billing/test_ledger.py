"""The ledger: double entry, idempotent transfers, no overdraft, holds resolved at most once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from billing import quota
from billing.ledger import errors
from billing.ledger import services as ledger
from billing.ledger.models import PendingTransfer, Transfer
from tests.billing.factories import funded_wallet, global_sums, new_customer_id, unique, wallet

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(channels):
    return channels["alpha"].id


def test_allocation_spreads_over_shards_and_is_idempotent(alpha):
    ref = unique("dep")
    before = ledger.channel_balance(channel_id=alpha)
    assert quota.allocate_stock(channel_id=alpha, units=100, reference=ref) == 100
    assert quota.allocate_stock(channel_id=alpha, units=100, reference=ref) == 0  # replay
    after = ledger.channel_balance(channel_id=alpha)
    assert after.available - before.available == 100
    assert after.allocated - before.allocated == 100
    assert Transfer.objects.filter(id__startswith=f"allocate:{ref}:").count() == ledger.STOCK_SHARDS


def test_same_id_with_different_parameters_is_refused_and_changes_nothing(alpha):
    customer = funded_wallet(channel_id=alpha, units=3)
    hold_id = unique("hold")
    quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=hold_id)
    before = wallet(alpha, customer)
    other = new_customer_id()
    with pytest.raises(errors.TransferIdReused):
        ledger.create_transfer(
            id=hold_id,
            debit_account_id=ledger.wallet_account_id(channel_id=alpha, customer_id=customer),
            credit_account_id=ledger.wallet_account_id(channel_id=alpha, customer_id=other),
            amount=2,
            kind="hold",
            pending=True,
        )
    assert wallet(alpha, customer) == before


def test_a_hold_beyond_the_wallet_is_refused_and_changes_nothing(alpha):
    customer = funded_wallet(channel_id=alpha, units=1)
    quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=unique("hold"))
    before, transfers = wallet(alpha, customer), Transfer.objects.count()
    with pytest.raises(errors.InsufficientBalance):
        quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=unique("hold"))
    assert wallet(alpha, customer) == before == {"available": 0, "held": 1, "used": 0}
    assert Transfer.objects.count() == transfers


def test_hold_then_commit_spends_exactly_one_unit_once(alpha):
    customer = funded_wallet(channel_id=alpha, units=2)
    hold_id = unique("hold")
    assert quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=hold_id).created
    assert not quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=hold_id).created  # retry
    assert wallet(alpha, customer) == {"available": 1, "held": 1, "used": 0}
    assert quota.commit_hold(hold_id=hold_id).created
    assert not quota.commit_hold(hold_id=hold_id).created  # retry of the same commit
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 1}
    with pytest.raises(errors.PendingAlreadyPosted):
        quota.release_hold(hold_id=hold_id)
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 1}


def test_release_gives_the_unit_back_and_blocks_a_later_commit(alpha):
    customer = funded_wallet(channel_id=alpha, units=1)
    hold_id = unique("hold")
    quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=hold_id)
    assert quota.release_hold(hold_id=hold_id).created
    assert not quota.release_hold(hold_id=hold_id).created
    with pytest.raises(errors.PendingAlreadyVoided):
        quota.commit_hold(hold_id=hold_id)
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 0}


def test_an_expired_hold_cannot_be_committed_and_the_sweeper_releases_it(alpha):
    customer = funded_wallet(channel_id=alpha, units=1)
    hold_id = unique("hold")
    quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=hold_id, timeout=timedelta(seconds=60))
    with connection.cursor() as cursor:  # time passes
        cursor.execute("UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = %s", [hold_id])
    with pytest.raises(errors.PendingExpired):
        quota.commit_hold(hold_id=hold_id)
    assert wallet(alpha, customer)["held"] == 1
    assert quota.sweep_expired_pending() >= 1
    assert not PendingTransfer.objects.filter(pk=hold_id).exists()  # no longer open
    assert Transfer.objects.get(pending_id=hold_id).state == "voided"  # closed by exactly one void
    assert quota.sweep_expired_pending() == 0 or not PendingTransfer.objects.filter(pk=hold_id).exists()
    assert wallet(alpha, customer) == {"available": 1, "held": 0, "used": 0}


def test_unknown_hold_is_refused(alpha):
    with pytest.raises(errors.PendingNotFound):
        quota.commit_hold(hold_id=unique("nohold"))


def test_an_order_larger_than_any_shard_is_split_and_a_too_large_one_refused(alpha):
    quota.allocate_stock(channel_id=alpha, units=40, reference=unique("dep"))
    available = ledger.channel_balance(channel_id=alpha).available
    customer = new_customer_id()
    ids = quota.reserve_stock(
        channel_id=alpha, customer_id=customer, order_ref=unique("o"), quantity=available - 1, timeout=timedelta(60)
    )
    assert len(ids) > 1
    assert ledger.channel_balance(channel_id=alpha).available == 1
    before = (ledger.channel_balance(channel_id=alpha), Transfer.objects.count())
    with pytest.raises(errors.InsufficientBalance):
        quota.reserve_stock(
            channel_id=alpha, customer_id=customer, order_ref=unique("o"), quantity=2, timeout=timedelta(60)
        )
    assert (ledger.channel_balance(channel_id=alpha), Transfer.objects.count()) == before


def test_the_books_always_balance(alpha):
    customer = funded_wallet(channel_id=alpha, units=5)
    for _ in range(3):
        quota.hold_quota(channel_id=alpha, customer_id=customer, hold_id=(h := unique("hold")))
        quota.commit_hold(hold_id=h)
    quota.refund_units(channel_id=alpha, customer_id=customer, refund_ref=unique("r"), units=2)
    net, debits_pending, credits_pending = global_sums()
    assert net == 0
    assert debits_pending == credits_pending


def test_the_database_itself_refuses_an_overdraft(alpha):
    """Even a write that bypasses the ledger functions cannot overdraw: the CHECK constraint holds."""
    from django.db import IntegrityError, transaction

    customer = funded_wallet(channel_id=alpha, units=1)
    account = ledger.wallet_account_id(channel_id=alpha, customer_id=customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_account SET debits_posted = debits_posted + 2 WHERE id = %s", [account])
