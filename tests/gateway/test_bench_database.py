"""Benchmarks write to a database of their own, never to the project's (the demo's), so a benchmark
run can never leave the demo failing ``manage.py reconcile``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.common import bench_database_url
from gateway import embedded

ROOT = Path(__file__).resolve().parents[2]


def _project_database_state(name: str) -> tuple | None:
    """(channels, ledger transfers) in database ``name`` of the embedded server; None if it has none."""
    location = embedded.postgres_location()
    conninfo = {"user": location.user, "host": location.host, "port": location.port}
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(dbname=name, autocommit=True, **conninfo) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        if not {"tenants_channel", "ledger_transfer"} <= tables:
            return ("not migrated",)
        channels = sorted(row[0] for row in conn.execute("SELECT code FROM tenants_channel"))
        transfers = conn.execute("SELECT count(*) FROM ledger_transfer").fetchone()[0]
        return (channels, transfers)


def test_the_bench_database_sits_next_to_the_projects():
    assert bench_database_url("postgres://u:p@db.example:5432/gateway?sslmode=require") == (
        "postgres://u:p@db.example:5432/gateway_bench?sslmode=require"
    )
    assert bench_database_url("postgres://u@h/gateway_bench") == "postgres://u@h/gateway_bench"
    assert bench_database_url(None, embedded_host="/srv/x/.data/pg") == (
        "postgres://postgres@%2Fsrv%2Fx%2F.data%2Fpg:5432/gateway_bench"
    )


@pytest.mark.slow
def test_the_ledger_benchmark_leaves_the_projects_database_alone():
    before = _project_database_state(embedded.EMBEDDED_DATABASE)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BENCH_DATABASE_URL")}
    env.pop("GATEWAY_BENCH_DATABASE_READY", None)

    run = subprocess.run(  # noqa: S603 - our own benchmark, tiny
        [sys.executable, "bench/ledger.py", "--seconds", "0.2", "--procs", "1", "--threads", "1", "--customers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert "hold+commit pairs/s:" in run.stdout
    assert _project_database_state(embedded.EMBEDDED_DATABASE) == before
    channels, transfers = _project_database_state(embedded.EMBEDDED_DATABASE + "_bench_ledger")  # its own
    assert "benchledger" in channels and transfers > 0
