"""The embedded PostgreSQL and Redis: first start from an empty data dir, restart, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import psycopg, redis
from gateway.embedded import ensure_postgres, ensure_redis
loc = ensure_postgres()
with psycopg.connect(dbname="postgres", user=loc.user, host=loc.host, port=loc.port) as conn:
    print("pg", conn.execute("select 40 + 2").fetchone()[0])
r = redis.Redis.from_url(ensure_redis())
r.incr("starts")
print("redis", r.get("starts").decode())
"""


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["GATEWAY_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def pids(data_dir: Path) -> tuple[int, int]:
    pg = int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
    rd = int((data_dir / "redis" / "redis.pid").read_text().strip())
    return pg, rd


def wait_gone(pid: int) -> None:
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} did not exit")


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    yield path
    run(path, "-m", "gateway.embedded", "stop")


def test_embedded_services_start_restart_and_recover_from_a_crash(data_dir):
    # 1. From an empty data dir: both servers are created and answer.
    first = run(data_dir, "-c", PROBE)
    assert first.returncode == 0, first.stderr
    assert "pg 42" in first.stdout and "redis 1" in first.stdout

    # 2. Starting twice reuses the running servers (and Redis keeps its data).
    before = pids(data_dir)
    second = run(data_dir, "-c", PROBE)
    assert second.returncode == 0, second.stderr
    assert "redis 2" in second.stdout
    assert pids(data_dir) == before

    # 3. A crash: both servers die by SIGKILL, leaving stale pid and socket files behind.
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    for pid in before:
        wait_gone(pid)
    assert (data_dir / "pg" / "postmaster.pid").exists()
    assert (data_dir / "redis" / "redis.sock").exists()
    third = run(data_dir, "-c", PROBE)
    assert third.returncode == 0, third.stderr
    assert "pg 42" in third.stdout
    assert "redis 3" in third.stdout  # the append-only file survived the crash
    assert pids(data_dir) != before

    # 4. A clean stop, then status says so.
    stopped = run(data_dir, "-m", "gateway.embedded", "stop")
    assert stopped.returncode == 0, stopped.stderr
    status = run(data_dir, "-m", "gateway.embedded", "status")
    assert "postgres: stopped" in status.stdout and "redis: stopped" in status.stdout
