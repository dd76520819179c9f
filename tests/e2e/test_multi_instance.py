"""Two web and two worker instances (separate processes, each with a data directory of its own, as
separate machines would have) against one external PostgreSQL and Redis: the machine's services, in a
database this test creates and drops and an empty Redis database it flushes afterwards. Loopback only.

Shown: stamps sent to both web instances are each stamped exactly once (one used serial per job, the books
reconcile); a retry with the same Idempotency-Key sent to the other web instance gets the first answer
and makes no second job; a channel's rate limit is one bucket for both web instances; and a job whose
worker instance is killed mid-stamp is taken back by the sweeper (run by the other instance's worker)
and finished there, once. Skipped, with the reason, where the services are not running."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.http import HttpClient, multipart
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import ROOT, Process, free_port

pytestmark = pytest.mark.slow

PG = ("127.0.0.1", 5432, "postgres")
REDIS = ("127.0.0.1", 6379)
DEADLINE_SECONDS = 240  # the whole test; each wait below is bounded by it
STAMPS = 8
PLACEMENT = {"page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _services_missing() -> str | None:
    if not _listening(PG[0], PG[1]):
        return f"no PostgreSQL service on {PG[0]}:{PG[1]}"
    if not _listening(*REDIS):
        return f"no Redis service on {REDIS[0]}:{REDIS[1]}"
    return None


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def wait(self, predicate, what: str, step: float = 0.2):
        while True:
            result = predicate()
            if result:
                return result
            assert time.monotonic() < self.end, f"gave up waiting for {what}"
            time.sleep(step)


@pytest.fixture
def external_services():
    """A fresh database on the machine's PostgreSQL, and an empty database of its Redis."""
    missing = _services_missing()
    if missing:
        pytest.skip(f"multi-instance test needs the machine's services: {missing}")
    import psycopg
    import redis

    name = f"gw_multi_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(host=PG[0], port=PG[1], user=PG[2], dbname="postgres", autocommit=True,
                                connect_timeout=3)  # fmt: skip
    except psycopg.OperationalError as exc:
        pytest.skip(f"cannot connect to PostgreSQL as {PG[2]} on {PG[0]}:{PG[1]}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    redis_db = None
    for number in range(8, 16):
        if redis.Redis(host=REDIS[0], port=REDIS[1], db=number).dbsize() == 0:
            redis_db = number
            break
    if redis_db is None:
        admin.execute(f'DROP DATABASE "{name}"')
        pytest.skip("no empty Redis database (8-15) on the machine's Redis")
    try:
        yield {
            "DATABASE_URL": f"postgres://{PG[2]}@{PG[0]}:{PG[1]}/{name}",
            "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
            "CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
            "database": name,
        }
    finally:
        redis.Redis(host=REDIS[0], port=REDIS[1], db=redis_db).flushdb()
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def _query(env: dict, sql: str, params=()):
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], connect_timeout=3) as conn:
        return conn.execute(sql, params).fetchall()


def test_two_web_and_two_worker_instances_behave_as_one(external_services, tmp_path):
    deadline = Deadline(DEADLINE_SECONDS)
    shared = {
        **{k: v for k, v in external_services.items() if k != "database"},
        "DJANGO_SETTINGS_MODULE": "gateway.settings.test",
        "ISSUER_KEY_DIR": str(tmp_path / "shared-signing-key"),  # one key, as one HSM for every machine
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "GATEWAY_PROBE_BIND": "off",
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
        "PYTHONFAULTHANDLER": "1",
    }

    def instance_env(name: str, **extra) -> dict:
        data = tmp_path / name
        data.mkdir()
        return {**shared, "GATEWAY_DATA_DIR": str(data), **extra}

    setup = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "tests.e2e.multi_instance_setup", str(STAMPS + 2)],
        cwd=ROOT, env={**os.environ, **instance_env("setup")}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr[-3000:]
    world = json.loads(setup.stdout.strip().splitlines()[-1])
    customers = world["customers"]

    processes: list[Process] = []

    def web(name: str) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--config",
                "python:gateway.gunicorn_conf", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--timeout", "60", "--no-control-socket"]  # fmt: skip
        processes.append(Process(argv, tmp_path / f"{name}.log", instance_env(name)))
        url = f"http://127.0.0.1:{port}"
        deadline.wait(lambda: _get(f"{url}/healthz") == 200, f"{name} to serve")
        return url

    def worker(name: str, **extra) -> Process:
        argv = [sys.executable, "-m", "celery", "-A", "gateway", "worker", "-n", f"{name}@%h", "-Q",
                "default,stamping", "--concurrency", "1", "--loglevel", "INFO", "--without-gossip",
                "--without-mingle"]  # fmt: skip
        proc = Process(argv, tmp_path / f"{name}.log", instance_env(name, **extra))
        processes.append(proc)
        return proc

    try:
        web_a, web_b = web("web-a"), web("web-b")
        alpha_a = HttpClient(web_a, "alpha.multi.test", world["keys"]["alpha"])
        alpha_b = HttpClient(web_b, "alpha.multi.test", world["keys"]["alpha"])

        bodies: dict = {}

        def stamp(client: HttpClient, customer: int, key: str | None = None):
            # one body per customer: a retry sends the very same bytes (boundary included)
            body, content_type = bodies.setdefault(
                customer, multipart({"customer": customer, **PLACEMENT}, [("document", "a.pdf", text_pdf())])
            )
            headers = {"Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
            return client.post("/api/v1/stamps", data=body, headers=headers)

        # 1. A worker instance that dies mid-stamp: worker A stops with its first job signed, just before
        #    the statement that records it (a fault point), and is killed there.
        doomed = stamp(alpha_a, customers[0])
        assert doomed.status == 202, doomed.text
        doomed_id = doomed.json()["id"]
        marker = tmp_path / "worker-a-reached-recording"
        worker_a = worker("worker-a", GATEWAY_FAULT_POINT="stamping.before_recording",
                          GATEWAY_FAULT_MARKER=str(marker))  # fmt: skip
        deadline.wait(marker.exists, "worker A to reach the recording of its job")
        # Killed there (SIGKILL to its instance's whole process group): PostgreSQL drops its connection
        # and the job's owner lock with it; its job stays `processing` until swept.
        worker_a.kill()
        worker_a.stop()

        # 2. Worker B joins; stamps go to both web instances.
        worker("worker-b")
        accepted = []
        for i, customer in enumerate(customers[1 : STAMPS + 1]):
            answer = stamp(alpha_a if i % 2 else alpha_b, customer, key=f"multi-{i}")
            assert answer.status == 202, answer.text
            accepted.append(answer.json()["id"])

        # 3. Idempotency across web instances: the same key sent to the other instance replays.
        for i in (0, 1):
            again = stamp(alpha_b if i % 2 else alpha_a, customers[1 + i], key=f"multi-{i}")
            assert again.status == 202 and again.json()["id"] == accepted[i], again.text

        # 4. Let the sweeper, run by worker B (published from this machine as beat would), take the
        #    killed instance's job back.
        sweep_env = {**os.environ, **instance_env("sweeper")}

        def doomed_finished():
            subprocess.run(  # noqa: S603
                [sys.executable, "-m", "celery", "-A", "gateway", "call", "gateway.stamping.resume_stale"],
                cwd=ROOT, env=sweep_env, capture_output=True, timeout=60,
            )  # fmt: skip
            rows = _query(shared, "SELECT status FROM alpha.stamping_stampjob WHERE id = %s", [doomed_id])
            return rows and rows[0][0] in ("stamped", "failed")

        deadline.wait(doomed_finished, "worker B to finish the killed worker's job", step=2.0)

        def all_finished():
            open_jobs = "SELECT count(*) FROM alpha.stamping_stampjob WHERE status IN ('queued', 'processing')"
            rows = _query(shared, open_jobs)
            return rows[0][0] == 0

        deadline.wait(all_finished, "every stamp to finish")

        jobs = dict(_query(shared, "SELECT id, status FROM alpha.stamping_stampjob"))
        assert set(jobs) == {doomed_id, *accepted}  # no second job for a retried key
        assert set(jobs.values()) == {"stamped"}, jobs
        attempts = _query(shared, "SELECT attempts FROM alpha.stamping_stampjob WHERE id = %s", [doomed_id])
        assert attempts[0][0] == 2  # the killed attempt, then the one that finished it
        serials = _query(
            shared,
            "SELECT job_ref, count(*) FROM issuer_serial WHERE status = 'used' AND job_ref LIKE 'alpha:%%' GROUP BY 1",
        )
        assert {ref.split(":", 1)[1]: n for ref, n in serials} == {job: 1 for job in jobs}  # never twice
        reconcile = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "reconcile", "--no-store"],
            cwd=ROOT, env=sweep_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr

        # 5. One rate-limit bucket for both web instances: beta allows a burst of 4, then 1/s.
        beta = [HttpClient(url, "beta.multi.test", world["keys"]["beta"]) for url in (web_a, web_b)]
        started = time.monotonic()
        answers = [beta[i % 2].get("/api/v1/customers").status for i in range(12)]
        elapsed = time.monotonic() - started
        allowed = answers.count(200)
        assert set(answers) <= {200, 429}, answers
        assert allowed <= 4 + math.ceil(elapsed) + 1, (answers, elapsed)  # two buckets would allow 8+
        assert 429 in answers[0::2] and 429 in answers[1::2], answers  # both instances refuse
    finally:
        for proc in processes:
            proc.stop()
