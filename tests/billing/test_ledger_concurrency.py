"""Real concurrency against real PostgreSQL: many connections racing for the same units."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing import quota
from billing.ledger import errors
from tests.billing.factories import funded_wallet, global_sums, unique, wallet


def race(n: int, work) -> list:
    """Run ``work(i)`` on ``n`` threads (each with its own database connection), released together."""
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def alpha_id(live_db):
    """A channel of this test's own (committed data, no schema): holds committed here have no serial,
    which would be a violation on a real channel that other tests reconcile."""
    from tests.billing.factories import bare_channel

    return bare_channel().id


def test_fifty_concurrent_holds_on_a_wallet_of_ten_give_exactly_ten(alpha_id):
    customer = funded_wallet(channel_id=alpha_id, units=10)

    def hold(i):
        try:
            quota.hold_quota(channel_id=alpha_id, customer_id=customer, hold_id=unique(f"hold{i}"))
            return "held"
        except errors.InsufficientBalance:
            return "refused"

    outcomes = Counter(race(50, hold))
    assert outcomes == {"held": 10, "refused": 40}
    assert wallet(alpha_id, customer) == {"available": 0, "held": 10, "used": 0}


def test_the_same_hold_requested_twenty_times_at_once_holds_one_unit(alpha_id):
    customer = funded_wallet(channel_id=alpha_id, units=5)
    hold_id = unique("hold")

    def hold(_):
        return quota.hold_quota(channel_id=alpha_id, customer_id=customer, hold_id=hold_id).created

    assert Counter(race(20, hold)) == {True: 1, False: 19}
    assert wallet(alpha_id, customer) == {"available": 4, "held": 1, "used": 0}


def test_commit_and_release_racing_on_one_hold_resolve_it_exactly_once(alpha_id):
    customer = funded_wallet(channel_id=alpha_id, units=1)
    hold_id = unique("hold")
    quota.hold_quota(channel_id=alpha_id, customer_id=customer, hold_id=hold_id)

    def resolve(i):
        try:
            (quota.commit_hold if i % 2 else quota.release_hold)(hold_id=hold_id)
            return "commit" if i % 2 else "release"
        except (errors.PendingAlreadyPosted, errors.PendingAlreadyVoided):
            return "refused"

    outcomes = race(20, resolve)
    winners = [o for o in outcomes if o != "refused"]
    assert len(set(winners)) == 1  # only commits or only releases succeeded (retries of the winner)
    final = wallet(alpha_id, customer)
    assert final["held"] == 0
    assert final["used"] + final["available"] == 1


def test_thirty_concurrent_orders_for_twenty_five_units_sell_exactly_twenty_five(live_db):
    from billing.ledger import services as ledger
    from tests.billing.factories import bare_channel

    channel_id = bare_channel().id
    quota.allocate_stock(channel_id=channel_id, units=25, reference=unique("dep"))

    def order(i):
        try:
            quota.reserve_stock(
                channel_id=channel_id,
                customer_id=10_000 + i,
                order_ref=unique("o"),
                quantity=1,
                timeout=quota.DEFAULT_HOLD_TIMEOUT,
            )
            return "reserved"
        except errors.InsufficientBalance:
            return "sold_out"

    assert Counter(race(30, order)) == {"reserved": 25, "sold_out": 5}
    balance = ledger.channel_balance(channel_id=channel_id)
    assert (balance.available, balance.reserved) == (0, 25)
    net, debits_pending, credits_pending = global_sums()
    assert net == 0 and debits_pending == credits_pending


def test_the_same_webhook_delivered_twenty_times_at_once_credits_once(live_db):
    from django_tenants.utils import schema_context

    from billing.providers import PaymentEvent
    from billing.retail import services as retail
    from billing.retail.models import Payment
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=alpha.pk, units=3, reference=unique("dep"))
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=unique("c"), name="Twenty")
        order = retail.create_order(channel=alpha, customer=customer, quantity=3)
    event = PaymentEvent(
        provider_ref=unique("pay"), order_id=order.pk, succeeded=True, amount_rupiah=order.total_rupiah
    )

    def deliver(_):
        with schema_context("alpha"):
            return retail.apply_payment_event(channel=alpha, provider_name="simulator", event=event).replayed

    replays = Counter(race(20, deliver))
    assert replays == {False: 1, True: 19}
    assert wallet(alpha.pk, customer.pk) == {"available": 3, "held": 0, "used": 0}
    with schema_context("alpha"):
        assert Payment.objects.filter(order_id=order.pk).count() == 1


def test_sweepers_racing_each_other_release_every_expired_hold_once(live_db):
    from tests.billing.factories import bare_channel

    channel_id = bare_channel().id
    customer = funded_wallet(channel_id=channel_id, units=10)
    holds = [unique("hold") for _ in range(10)]
    for hold_id in holds:
        quota.hold_quota(channel_id=channel_id, customer_id=customer, hold_id=hold_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_transfer SET timeout_at = now() - interval '1 second' WHERE id = ANY(%s)", [holds]
        )

    from billing.ledger.models import Transfer

    voided = race(6, lambda _: quota.sweep_expired_pending())
    assert sum(voided) >= 10  # (other tests' expired holds may be swept too)
    assert not Transfer.objects.filter(pk__in=holds, open__isnull=False).exists()  # none left open
    assert Transfer.objects.filter(pending_id__in=holds).count() == 10  # one void each, never two
    assert wallet(channel_id, customer) == {"available": 10, "held": 0, "used": 0}
