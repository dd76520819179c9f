"""Management commands on a database that was never migrated say what to run, not a traceback."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from gateway import embedded

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_database():
    """A database on the embedded server with nothing in it, as a fresh install has; its URL."""
    location = embedded.ensure_postgres()
    name = f"never_migrated_{secrets.token_hex(4)}"
    conninfo = {"user": location.user, "host": location.host, "port": location.port, "autocommit": True}
    with psycopg.connect(dbname="postgres", **conninfo) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"postgres://{location.user}@{quote(location.host, safe='')}:{location.port}/{name}"
    with psycopg.connect(dbname="postgres", **conninfo) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "gateway.settings.local"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["reconcile"],
        ["settlement", "--from", "2026-11-01", "--to", "2026-11-30"],
        ["deposit", "--channel", "pos", "--units", "5", "--reference", "d-1"],
        ["create_channel", "--code", "bank", "--name", "Bank", "--domain", "bank.localhost"],
    ],
)
def test_a_command_on_an_unmigrated_database_says_to_migrate(empty_database, command):
    result = manage(empty_database, *command)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"manage.py {command[0]}: the database 'never_migrated_" in result.stderr
    assert "is not migrated (relation " in result.stderr
    assert "manage.py migrate_schemas --shared\n" in result.stderr and "manage.py migrate_schemas\n" in result.stderr
