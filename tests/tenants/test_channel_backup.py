"""A channel's schema backed up with ``pg_dump`` and put back with ``pg_restore`` (``manage.py channel_dump``
/ ``channel_restore``): what was in the dump comes back, what came after it is gone, the channel serves
requests again, and a restore never drops a schema without ``--replace``."""

from __future__ import annotations

import secrets

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from conftest import host_client
from kernel.pgtools import ProgramNotFound, program

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_programs(live_db):
    connection.ensure_connection()
    try:
        program("pg_dump", server_version_num=connection.pg_version)
        program("pg_restore", server_version_num=connection.pg_version)
    except ProgramNotFound as exc:
        pytest.skip(f"PostgreSQL client programs not available: {exc}")


def customers(code: str) -> set[str]:
    from tenants.customers.models import Customer

    with schema_context(code):
        return set(Customer.objects.values_list("external_ref", flat=True))


def test_a_channel_schema_dumped_and_restored_comes_back_as_it_was(pg_programs, tmp_path):
    from tenants.customers.services import create_customer
    from tenants.services import provision_channel

    code = f"bk_{secrets.token_hex(4)}"
    domain = f"{code.replace('_', '-')}.test"
    provisioned = provision_channel(code=code, name="Backup Channel", domain=domain, admin_password="portal-pass-123")
    with schema_context(code):
        create_customer(external_ref="before-dump", name="Kept")
    dump = tmp_path / f"{code}.dump"

    call_command("channel_dump", "--channel", code, "--file", str(dump))
    assert dump.stat().st_size > 0
    with schema_context(code):
        create_customer(external_ref="after-dump", name="Lost by the restore")
    assert customers(code) == {"before-dump", "after-dump"}

    with pytest.raises(CommandError, match="--replace"):
        call_command("channel_restore", "--channel", code, "--file", str(dump))
    assert customers(code) == {"before-dump", "after-dump"}  # refused: nothing dropped

    call_command("channel_restore", "--channel", code, "--file", str(dump), "--replace")
    assert customers(code) == {"before-dump"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", [f"{code}__%"])
        assert cursor.fetchone()[0] == 0  # the schema set aside during the restore is gone

    from gateway.middleware import TenantMiddleware

    TenantMiddleware.forget()
    answer = host_client(domain, provisioned.api_key.plaintext).get("/api/v1/customers")
    assert answer.status_code == 200, answer.content
    assert [c["external_ref"] for c in answer.json()["results"]] == ["before-dump"]


def test_a_failed_restore_leaves_the_schema_as_it_was(pg_programs, tmp_path):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP not really a dump")
    before = customers("beta")
    with pytest.raises(CommandError, match="pg_restore failed"):
        call_command("channel_restore", "--channel", "beta", "--file", str(broken), "--replace")
    assert customers("beta") == before
