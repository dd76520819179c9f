"""Provisioning a channel gives it a schema, a host, a portal admin and an API key."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from gateway.models import ApiKey
from tenants.models import Channel, Domain

pytestmark = pytest.mark.django_db


def _schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        return {row[0] for row in cursor.fetchall()}


def test_create_channel_provisions_schema_domain_admin_and_key(capsys, client_for):
    call_command("create_channel", "--code", "gamma", "--name", "Gamma Pay", "--domain", "gamma.test", "--json")
    out = json.loads(capsys.readouterr().out)

    channel = Channel.objects.get(code="gamma")
    assert channel.schema_name == "gamma"
    assert "gamma" in _schemas()
    assert Domain.objects.get(domain="gamma.test").tenant == channel
    key = ApiKey.objects.get(channel=channel)
    assert out["api_key"].startswith(f"emk_{key.prefix}_")
    assert out["api_key"] not in {key.secret_sha256, key.prefix}  # only a digest is stored
    with schema_context("gamma"):
        from django.contrib.auth import get_user_model

        admin = get_user_model().objects.get(username="admin")
        assert admin.check_password(out["admin_password"])
    # the new host serves the new channel, with the printed key
    from conftest import host_client

    response = host_client("gamma.test", out["api_key"]).get("/api/v1/")
    assert response.json()["channel"] == "gamma"


@pytest.mark.parametrize(
    ("code", "domain", "message"),
    [
        ("alpha", "other.test", "already exists"),
        ("delta", "alpha.test", "already in use"),
        ("Bad Code!", "bad.test", "lower-case"),
        ("public", "public.test", "reserved"),
        ("pg_catalog", "pgc.test", "reserved"),
        ("delta", "not a host", "not a valid host"),
    ],
)
def test_create_channel_refuses_clearly_and_creates_nothing(code, domain, message):
    before = (Channel.objects.count(), Domain.objects.count(), ApiKey.objects.count(), _schemas())
    with pytest.raises(CommandError, match=message):
        call_command("create_channel", "--code", code, "--name", "X", "--domain", domain)
    assert (Channel.objects.count(), Domain.objects.count(), ApiKey.objects.count(), _schemas()) == before
