"""The demo seed: issuer, two channels with stock and customers; running it twice changes nothing."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from tenants.customers.models import Customer
from tenants.models import Channel, Domain

pytestmark = pytest.mark.django_db


def test_seed_demo_is_complete_and_idempotent(settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo")
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    call_command("seed_demo")
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first == second  # same credentials, nothing created twice
    assert set(first["channels"]) == {"pos", "retail"}
    assert Domain.objects.filter(domain__in=["pos.localhost", "retail.localhost", "localhost"]).count() == 3
    for code in ("pos", "retail"):
        channel = Channel.objects.get(code=code)
        balance = ledger.channel_balance(channel_id=channel.pk)
        assert balance.allocated == 10_000
        with schema_context(code):
            customers = list(Customer.objects.order_by("id"))
        assert len(customers) == 3
        assert quota.wallet_balance(channel_id=channel.pk, customer_id=customers[0].pk)["available"] == 5
