"""One definition of a stamping hold: the stamp intake and ``hold_quota`` both call ``ledger_hold_unit``."""

from __future__ import annotations

import pytest
from django.db import connection

from billing import quota
from billing.ledger.models import Transfer
from tests.billing.factories import funded_wallet, unique

pytestmark = pytest.mark.django_db


def test_the_intake_holds_through_the_one_hold_function():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE p.proname = 'stamping_intake' AND n.nspname = 'alpha'"
        )
        (source,) = cursor.fetchone()
    assert "ledger_hold_unit(" in source
    assert "'hold'" not in source  # the hold's shape is not spelled out a second time


def test_hold_quota_makes_the_hold_the_ledger_defines(channels):
    customer = funded_wallet(channel_id=channels["alpha"].pk, units=1)
    hold_id = unique("hold")
    assert quota.hold_quota(channel_id=channels["alpha"].pk, customer_id=customer, hold_id=hold_id).created
    hold = Transfer.objects.get(id=hold_id)
    assert (hold.amount, hold.kind, hold.state) == (1, "hold", "pending")
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer) == {
        "available": 0,
        "held": 1,
        "used": 0,
    }
