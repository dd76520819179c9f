"""Test-wide fixtures: a real PostgreSQL test database with the issuer and two channels.

The channels are provisioned once per session (a schema each, migrated), because creating a schema
is the slowest thing a test could do. Tests run inside a transaction that is rolled back, so rows
they create vanish while the channels stay.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client


def pytest_configure(config):
    """The embedded PostgreSQL and Redis, unless the environment names servers: the settings only say
    where they listen, and the test setup is one of the commands that starts them."""
    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()

    # the message catalogues' .mo files are build output (never committed): compiled from locale/*/django.po
    from gateway.i18n import compile_all

    compile_all()


@pytest.fixture(scope="session", autouse=True)
def _development_signing_keys():
    """The development signing key under ISSUER_KEY_DIR, made by the test setup as `manage.py dev_keys`
    does for the demo (a request never makes one)."""
    from django.conf import settings

    from issuer.signing.keys import create_dev_keys

    create_dev_keys(settings.ISSUER_KEY_DIR, ca_directory=settings.ISSUER_DEV_CA_DIR)


CHANNELS = {
    "alpha": {"name": "Alpha Channel", "domain": "alpha.test"},
    "beta": {"name": "Beta Channel", "domain": "beta.test"},
}
ISSUER_HOST = "issuer.test"


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """The test database, always created (pytest-django would skip it when a run has only
    ``live_db`` tests, which use committed data and no ``django_db`` mark)."""
    from django.test.utils import setup_databases, teardown_databases

    from tenants.services import ensure_issuer, provision_channel

    with django_db_blocker.unblock():
        db_cfg = setup_databases(verbosity=request.config.option.verbose, interactive=False, aliases={"default"})
        ensure_issuer(domains=[ISSUER_HOST, "testserver"])
        keys = {}
        for code, spec in CHANNELS.items():
            provisioned = provision_channel(
                code=code, name=spec["name"], domain=spec["domain"], admin_password="portal-pass-123"
            )
            keys[code] = provisioned.api_key.plaintext
        django_db_setup_keys.update(keys)
    yield
    from gateway.idempotency import release_owner_locks

    release_owner_locks()  # the idempotency lock connection of this thread would keep the database open
    with django_db_blocker.unblock():
        try:
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)
        except Exception as exc:  # noqa: BLE001 - a busy database at exit is reported, not fatal
            request.node.warn(pytest.PytestWarning(f"could not drop the test database: {exc!r}"))


django_db_setup_keys: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _public_schema_and_fresh_host_cache():
    from gateway.middleware import TenantMiddleware
    from stamping.brownout.selectors import forget as forget_brownouts

    TenantMiddleware.forget()
    forget_brownouts()  # a pause a rolled-back test made must not refuse the next one's requests
    yield
    connection.set_schema_to_public()
    TenantMiddleware.forget()


@pytest.fixture
def channel_keys(django_db_setup) -> dict[str, str]:
    """The first API key (all scopes) of each session channel, by channel code."""
    return dict(django_db_setup_keys)


@pytest.fixture
def channels(db):
    from tenants.models import Channel

    return {c.code: c for c in Channel.objects.filter(code__in=CHANNELS)}


def host_client(host: str, key: str | None = None, **extra) -> Client:
    headers = {"HTTP_HOST": host}
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    headers.update(extra)
    return Client(**headers)


@pytest.fixture
def client_for(channel_keys):
    """``client_for("alpha")`` -> a test client on alpha's host with alpha's key;
    ``client_for("alpha", key="beta")`` -> alpha's host with beta's key."""

    def make(host_channel: str | None, key: str | None = "__own__", **extra) -> Client:
        host = ISSUER_HOST if host_channel is None else CHANNELS[host_channel]["domain"]
        if key == "__own__":
            key = channel_keys.get(host_channel) if host_channel else None
        elif key in channel_keys:
            key = channel_keys[key]
        return host_client(host, key, **extra)

    return make


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Committed data, visible to other connections (threads, processes). No rollback at the end:
    tests using it make their own unique rows (random customer ids, unique references)."""
    from django.db import connections

    from billing.ledger.services import forget_cached_accounts

    with django_db_blocker.unblock():
        forget_cached_accounts()
        yield
        connections.close_all()
