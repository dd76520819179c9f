"""Property-based: random sequences of deposit, order, pay (duplicated, reordered, late), expire, hold,
commit, release and refund. A model of what should have happened is kept beside the real system; after
every step the two agree and every reconciliation check of the ledger holds."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from billing import quota, reconciliation
from billing.ledger import errors as ledger_errors
from billing.ledger import services as ledger
from billing.providers import PaymentEvent
from billing.retail import services as retail
from billing.retail.errors import InsufficientStock, RefundNotAllowed
from billing.retail.models import Order
from tenants.customers.models import Customer
from tenants.models import Channel

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


class QuotaMachine(RuleBasedStateMachine):
    orders = Bundle("orders")
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        self.channel = Channel.objects.get(code="alpha")
        start = ledger.channel_balance(channel_id=self.channel.pk)
        self.stock0, self.reserved0 = start.available, start.reserved
        self.stock = 0  # change in available stock
        self.reserved = 0
        with schema_context("alpha"):
            self.customers = [
                Customer.objects.create(external_ref=f"hyp-{next(_ids)}-{i}", name=f"H{i}") for i in range(3)
            ]
        self.wallets = {c.pk: {"available": 0, "held": 0, "used": 0} for c in self.customers}
        self.order_state: dict[str, dict] = {}
        self.payment_refs: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ rules

    @rule(units=st.integers(min_value=1, max_value=20))
    def deposit(self, units):
        quota.allocate_stock(channel_id=self.channel.pk, units=units, reference=f"hyp-dep-{next(_ids)}")
        self.stock += units

    @rule(target=orders, who=st.integers(0, 2), quantity=st.integers(1, 8))
    def order(self, who, quantity):
        customer = self.customers[who]
        available = self.stock0 + self.stock
        with schema_context("alpha"):
            try:
                order = retail.create_order(channel=self.channel, customer=customer, quantity=quantity)
            except InsufficientStock:
                assert available < quantity
                return multiple()
        assert available >= quantity
        self.stock -= quantity
        self.reserved += quantity
        self.order_state[order.pk] = {
            "customer": customer.pk,
            "quantity": quantity,
            "status": "awaiting",
            "refunded": 0,
        }
        return order.pk

    @rule(order_id=orders, duplicate=st.booleans())
    def pay(self, order_id, duplicate):
        state = self.order_state[order_id]
        refs = self.payment_refs.setdefault(order_id, [])
        replay = duplicate and bool(refs)
        ref = refs[-1] if replay else f"hyp-pay-{next(_ids)}"
        refs.append(ref)
        with schema_context("alpha"):
            order = Order.objects.get(pk=order_id)
            outcome = retail.apply_payment_event(
                channel=self.channel,
                provider_name="simulator",
                event=PaymentEvent(
                    provider_ref=ref, order_id=order_id, succeeded=True, amount_rupiah=order.total_rupiah
                ),
            )
        if replay:
            assert outcome.replayed
            return
        q, who = state["quantity"], state["customer"]
        if state["status"] == "awaiting":
            self.reserved -= q
            self.wallets[who]["available"] += q
            state["status"] = "credited"
        elif state["status"] == "expired":
            if self.stock0 + self.stock >= q:
                self.stock -= q
                self.wallets[who]["available"] += q
                state["status"] = "credited"
            else:
                state["status"] = "refunded"
        # credited or refunded already: a second payment is refunded, nothing moves
        assert outcome.status == {"credited": "credited", "refunded": "refunded"}[state["status"]]

    @rule(order_id=orders)
    def expire(self, order_id):
        state = self.order_state[order_id]
        with schema_context("alpha"):
            order = Order.objects.get(pk=order_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE ledger_transfer SET timeout_at = now() - interval '1 second'"
                    " WHERE id = ANY(%s) AND state = 'pending'",
                    [order.reservation_ids],
                )
            Order.objects.filter(pk=order_id, status="awaiting_payment").update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
            quota.sweep_expired_pending()  # the ledger's sweeper may run first ...
            retail.expire_orders(channel=self.channel)  # ... or the order sweeper
        if state["status"] == "awaiting":
            self.reserved -= state["quantity"]
            self.stock += state["quantity"]
            state["status"] = "expired"

    @rule(target=holds, who=st.integers(0, 2))
    def hold(self, who):
        customer = self.customers[who].pk
        hold_id = f"hyp-hold-{next(_ids)}"
        try:
            quota.hold_quota(channel_id=self.channel.pk, customer_id=customer, hold_id=hold_id)
        except ledger_errors.InsufficientBalance:
            assert self.wallets[customer]["available"] == 0
            return multiple()
        self.wallets[customer]["available"] -= 1
        self.wallets[customer]["held"] += 1
        return (hold_id, customer)

    @rule(held=consumes(holds), commit=st.booleans(), retry=st.booleans())
    def resolve(self, held, commit, retry):
        hold_id, customer = held
        action = quota.commit_hold if commit else quota.release_hold
        for _ in range(2 if retry else 1):
            action(hold_id=hold_id)
        self.wallets[customer]["held"] -= 1
        self.wallets[customer]["used" if commit else "available"] += 1

    @rule(order_id=orders, units=st.integers(1, 8))
    def refund(self, order_id, units):
        state = self.order_state[order_id]
        who = state["customer"]
        allowed = (
            state["status"] == "credited"
            and units <= state["quantity"] - state["refunded"]
            and units <= self.wallets[who]["available"]
        )
        with schema_context("alpha"):
            customer = Customer.objects.get(pk=who)
            try:
                retail.refund_order(
                    channel=self.channel,
                    order_id=order_id,
                    customer=customer,
                    units=units,
                    request_key=f"hyp-rf-{next(_ids)}",
                )
            except RefundNotAllowed:
                assert not allowed
                return
        assert allowed
        state["refunded"] += units
        self.wallets[who]["available"] -= units
        self.stock += units

    # ------------------------------------------------------------------ invariants

    @invariant()
    def model_matches_ledger(self):
        balance = ledger.channel_balance(channel_id=self.channel.pk)
        assert balance.available == self.stock0 + self.stock
        assert balance.reserved == self.reserved0 + self.reserved
        for customer, expected in self.wallets.items():
            assert quota.wallet_balance(channel_id=self.channel.pk, customer_id=customer) == expected

    @invariant()
    def reconciliation_of_the_ledger_holds(self):
        for check in (
            reconciliation.check_books_balance,
            reconciliation.check_account_totals_match_transfers,
            reconciliation.check_no_negative_balance,
            reconciliation.check_units_conserved,
        ):
            result = check()
            assert result.ok, (result.name, result.violations)


def test_quota_flow_invariants_hold_for_any_sequence(channels):
    run_state_machine_as_test(
        QuotaMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
