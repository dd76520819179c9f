"""A deadline surge, replayed on loopback: does a quiet channel stay fast, are ETAs honest, is nothing lost?

Run from the repository root (embedded PostgreSQL and Redis under ``.data/``; nothing leaves 127.0.0.1):

    .venv/bin/python bench/surge.py                  # the full run: 60 s alone, 20 s ramp, 60 s hold
    .venv/bin/python bench/surge.py --faults all     # the same with the four faults below
    .venv/bin/python bench/surge.py --quick          # a smoke run of about a minute and a half
    .venv/bin/python bench/surge.py --quick --backlog-limit 200   # ... that also drives 503 overloaded
    .venv/bin/python bench/surge.py --mixed          # the surge channel also buys and registers

What it does:
  - starts the project's own processes as production runs on this machine: gunicorn (3 workers, with the
    project's ``gateway.gunicorn_conf``: gthread, ``WEB_THREADS`` threads, the probe listener;
    ``--worker-class`` / ``--threads`` override it), ONE Celery worker (concurrency 2, every queue in
    priority order: ``stamping,credit,default``) and beat, all against the embedded PostgreSQL and a Redis
    database of their own (``--redis-db``, default 3, flushed at the start: cache, rate limits, admission
    counters, broker). They run in the bench's session, each in a process group of its own: in sessions
    of their own the kernel's autogroups would share the CPU between web and worker as equals, whatever
    the worker's priority (docs/stamping.md, "CPU: request handling first");
  - seeds two channels, ``benchquiet`` and ``benchsurge``, with stock, customers with quota and an API key
    each, with rate limits lifted (so the bench measures admission and fairness; a 429 is still counted);
    backlog limits, lanes and concurrency budgets are the product's own;
  - phase 1, *alone*: the quiet channel sends 3 stamp requests/s, open loop (on schedule, whatever the
    answers), for ``--alone`` s (60 by default: 180 requests, whose p99 is the second slowest; with
    the 20 s this phase had before, n = 60 and the "p99" was the slowest request alone, so the ratio
    swung with one request);
  - phase 2, *surge*: the surge channel ramps from 0 to ``--clients`` closed-loop clients over ``--ramp`` s
    and holds for ``--hold`` s; each sends its next request as soon as it has an answer, waits exactly the
    ``Retry-After`` a 503 or 429 (or ``409 idempotency_request_in_progress``) gives, and retries with the
    same ``Idempotency-Key``; a connection error or another 5xx is retried after a fixed 1 s. The quiet
    channel keeps its 3/s throughout. A prober reads ``/readyz`` of the probe listener (1 s timeout) once
    a second, as an orchestrator would;
  - documents: a 1-page text PDF, and the ~800 KB scan for ``--scan-share`` of the requests (the fixtures
    of ``tests/fixtures/pdfs``, as ``bench/stamping.py`` uses);
  - faults, each at its moment of phase 2 (seconds after the surge starts; default: spread over the hold)
    and each restarted: ``--kill-worker [AT]`` SIGKILLs a Celery pool process (the pool replaces it),
    ``--kill-web [AT]`` a gunicorn worker (the arbiter replaces it), ``--kill-redis [AT]`` the embedded
    Redis and ``--kill-postgres [AT]`` the PostgreSQL postmaster (each started again with
    ``gateway.embedded`` after ``--outage`` s); ``--faults all`` (or a comma list) picks several. The run
    starts with a ``CHECKPOINT``, as a server quiet before a deadline would have had one: a PostgreSQL
    kill then replays this run's WAL only, not that of the runs before it (two earlier runs left 1.7 GB
    and a 15 s replay on a slow disk), so runs compare;
  - after phase 2 it waits (at most ``--drain-timeout`` s) until every accepted job has ended, stops what
    it started, and prints:
      * the quiet channel's stamp-request p50/p99 alone and in the surge (every HTTP attempt, timed from
        its scheduled send), the same for each document (text, scan), the p99 ratio surge/alone, and its
        time-to-stamped p99 alone and in the surge;
      * ETA error |actual - promised| / promised for every accepted job (promised: ``queue.eta_ms``, or
        ``queue.eta_seconds``, of the 202; actual: the job's ``finished_at`` minus the moment the 202
        arrived, from which a client counts the promise; also printed from the send of the attempt
        that was accepted; each job's figures go to ``.data/bench-surge/last-etas.json``), median and p90,
        overall and per channel;
      * the ETA error also by when: promises made during the ramp, kept while the load ran, and those of
        jobs accepted under load that finished after it stopped (the machine then stamps faster);
      * stamps completed per second during phase 2, during the hold and once the load stopped (from the
        jobs' ``finished_at``);
      * answers by status and problem ``code``; 5xx other than 503; connection errors; the retries
        made after a ``Retry-After`` and how many were refused again, by the code that sent them back;
      * the ledger check: every 202's job exists and ended stamped (unit committed, hold posted, one
        used serial with the job's ``job_ref``) or failed (unit released, hold voided); no serial twice;
        ``manage.py reconcile`` clean. ``lost`` = 202s without a job + jobs in a wrong end state +
        serials used twice + jobs still open after the drain wait.
  - ``--mixed`` (issue #19, overload priorities): during phase 2 the surge channel also runs ``--buyers``
    closed-loop clients that register a new customer (one time in four) or order 1 unit for a seeded
    customer and pay it at once with the simulator's signed webhook (``POST /api/v1/payments/simulator/
    webhook``, retried each second until a 200, as a provider does). Automatic brownout thresholds are
    lowered for the run (``--brownout-auto``, default ``registrations=8/3,purchases=15/5``) so that a
    short surge passes them. A watcher reads ``GET /api/v1/status`` of the surge channel every second. It
    prints: orders paid and credited, the most seconds from a payment's first webhook to its order
    ``credited_at`` (goal: every paid order credited within 60 s), orders paid but not credited; per
    class (new customers, purchases, stamp requests) the refusals (503), the moment of the class's first
    one and of each code's first one; the refusals by code with the classes they fell on; the classes in
    the order of their first refusal (goal: the lowest class refused first: ``lowest class first: yes``);
    and when each class was paused and resumed.
  - The last line: ``surge: quiet p99 ratio X, ETA error median M% p90 P%, S stamps/s, 5xx(non-503) N, lost L``.

Goals (issue #11): quiet p99 ratio <= 2; ETA error median <= 25% and p90 <= 50%; zero 5xx other than the
documented 503s; zero loss. The load generator shares the cores with the server (2 on the reference
machine): compare runs on the same machine. Bounded: the load stops on schedule, the drain wait is
capped, and a hard deadline (``--deadline``, default the phases + drain + 5 min) ends the run; every
process it started is stopped on the way out, Ctrl-C and errors included. Server logs go to
``.data/bench-surge/``. At its start and its end it deletes the bench channels' document bytes (stamped
PDFs, uploads of ended jobs: about 1.5 GB a run); jobs, serials and the ledger stay.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

from bench.common import multipart_body, quantile  # noqa: E402

QUIET, SURGE = "benchquiet", "benchsurge"
HOSTS = {QUIET: f"{QUIET}.localhost", SURGE: f"{SURGE}.localhost"}
QUIET_RATE = 3.0  # stamp requests per second, open loop
QUIET_CUSTOMERS = 4
UNITS_PER_CUSTOMER = 3_000  # added per run
BOX = {"page": 1, "llx": 40, "lly": 40, "urx": 140, "ury": 140}
REQUEST_TIMEOUT = 60.0
WARM_UP_STAMPS = 6  # per channel, sent at once
RETRY_PAUSE = 1.0  # after a connection error or a 5xx without Retry-After: fixed, no jitter
FAULTS = ("worker", "web", "redis", "postgres")
FAULT_AT = {"worker": 0.2, "web": 0.4, "redis": 0.6, "postgres": 0.8}  # default moments: share of the hold
LOG_DIR = ROOT / ".data" / "bench-surge"


# --------------------------------------------------------------------------- setup (this process, Django)


def prepare_services(redis_db: int) -> tuple[bool, bool, str]:
    """Start the embedded servers if needed; point this process (and its children) at our Redis database.
    Returns (postgres was running, redis was running, the Redis URL)."""
    from gateway import embedded

    pg_before = (embedded._pg_dir() / "postmaster.pid").exists()
    redis_before = embedded._redis_alive(embedded._redis_paths()[1])
    if os.environ.get("DATABASE_URL") is None:
        embedded.ensure_postgres()
    base = os.environ.get("REDIS_URL") or embedded.ensure_redis()
    url = base + ("&" if "?" in base else "?") + f"db={redis_db}"
    os.environ["REDIS_URL"] = url
    return pg_before, redis_before, url


def checkpoint() -> None:
    """A checkpoint before the run (see the module docstring). It needs the right to checkpoint
    (superuser, or ``pg_checkpoint``); without it the run goes on as before, and says so."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as exc:
        print(f"no checkpoint before the run ({exc}): a PostgreSQL kill replays whatever WAL came before it")


def seed(clients: int, extra_stock: int = 0) -> dict:
    from bench.common import setup_migrated

    setup_migrated("surge")
    import redis
    from django.conf import settings
    from django_tenants.utils import schema_context

    from billing import quota
    from gateway.apikeys import issue_api_key
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tenants.services import ensure_issuer, provision_channel

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # our own database: stale counters and queues go
    ensure_issuer(domains=["localhost"])
    ctx: dict = {}
    for code, customers in ((QUIET, QUIET_CUSTOMERS), (SURGE, clients)):
        channel = (
            Channel.objects.filter(code=code).first()
            or provision_channel(code=code, name=f"Surge bench {code[5:]}", domain=HOSTS[code]).channel
        )
        Channel.objects.filter(pk=channel.pk).update(
            rate_limit_per_key=1_000_000, rate_limit_per_channel=1_000_000, rate_limit_burst=1_000_000
        )
        closed = fail_open_jobs(code)
        if closed:
            print(f"{code}: {closed} jobs left open by an earlier run failed and their units released")
        key = issue_api_key(channel=channel, name=f"surge bench {uuid.uuid4().hex[:6]}").plaintext
        quota.allocate_stock(
            channel_id=channel.pk,
            units=customers * UNITS_PER_CUSTOMER + 1000 + extra_stock,
            reference=f"surge-{uuid.uuid4().hex}",
        )
        ids = []
        with schema_context(code):
            for i in range(customers):
                customer, _ = Customer.objects.get_or_create(
                    external_ref=f"surge-{i}", defaults={"name": f"Surge bench {i}"}
                )
                ids.append(customer.pk)
                reserved = quota.reserve_stock(
                    channel_id=channel.pk,
                    customer_id=customer.pk,
                    order_ref=f"surge-{uuid.uuid4().hex}",
                    quantity=UNITS_PER_CUSTOMER,
                    timeout=quota.DEFAULT_HOLD_TIMEOUT,
                )
                quota.settle_reservation(reservation_ids=reserved)
        ctx[code] = {"key": key, "customers": ids, "host": HOSTS[code], "concurrency": channel.stamping_concurrency}
    return ctx


def fail_open_jobs(schema: str) -> int:
    """Jobs an interrupted earlier run left queued or running: failed, units released (they would skew
    this run's backlog)."""
    from django_tenants.utils import schema_context

    from stamping import services
    from stamping.models import StampJob

    with schema_context(schema):
        open_jobs = list(StampJob.objects.filter(status__in=["queued", "processing"]).values_list("pk", flat=True))
        for job_id in open_jobs:
            services._fail(StampJob.objects.get(pk=job_id), code="bench", detail="left by an earlier bench/surge.py")
    return len(open_jobs)


# --------------------------------------------------------------------------- the load (forked, no Django)


def documents() -> dict[str, bytes]:
    from tests.fixtures.pdfs import factory

    return {"text": factory.text_pdf(), "scan": factory.scanned_pdf()}


KEEPALIVE_SECONDS = 2.0  # gunicorn's default keep-alive: a connection idle this long is gone


class Client:
    """One HTTP/1.1 connection to the server; sends a stamp request and retries it as a well-behaved
    integration does. Every attempt is recorded."""

    def __init__(self, port: int, channel: dict, name: str, phase_of, out: list):
        self.port, self.channel, self.name, self.phase_of, self.out = port, channel, name, phase_of, out
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        return self.conn

    def attempt(self, body: bytes, ctype: str, key: str, scheduled: float | None = None, kind: str = "") -> dict:
        sent = time.time()
        started = time.perf_counter() - (max(0.0, sent - scheduled) if scheduled is not None else 0.0)
        headers = {
            "Host": self.channel["host"],
            "Authorization": f"Bearer {self.channel['key']}",
            "Content-Type": ctype,
            "Idempotency-Key": key,
        }
        record = {"ch": self.name, "sent": scheduled if scheduled is not None else sent, "key": key, "kind": kind}
        try:
            conn = self._connection()
            conn.request("POST", "/api/v1/stamps", body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            record["answered"] = time.time()
            record["status"] = resp.status
            record["retry_after"] = resp.getheader("Retry-After")
            record["replayed"] = resp.getheader("Idempotent-Replayed") == "true"
            ctype_out = resp.getheader("Content-Type", "")
            if "json" in ctype_out:
                data = json.loads(payload)
                if resp.status == 202:
                    record["job"] = data.get("id")
                    queue = data.get("queue") or {}
                    record["eta"] = queue["eta_ms"] / 1000 if "eta_ms" in queue else queue.get("eta_seconds")
                    record["position"] = (data.get("queue") or {}).get("position")
                else:
                    record["code"] = data.get("code") if isinstance(data, dict) else None
            else:
                record["code"] = "(not json)"
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            record["status"] = 0
            record["code"] = f"({type(exc).__name__})"
            self.close()
        record["lat"] = time.perf_counter() - started
        record["phase"] = self.phase_of(record["sent"])
        self.out.append(record)
        return record

    def stamp(
        self, body: bytes, ctype: str, *, stop_at: float, scheduled: float | None = None, kind: str = ""
    ) -> None:
        """One logical stamp request: retried (same key) after 503/429/409-in-progress as ``Retry-After``
        says, after connection errors and other 5xx after a fixed pause; given up at ``stop_at``."""
        key = uuid.uuid4().hex
        first = scheduled if scheduled is not None else time.time()
        previous = None  # the answer that sent this attempt back (a retry), or None
        previous_code = None
        while True:
            record = self.attempt(body, ctype, key, scheduled, kind)
            record["first_sent"] = first
            record["retry_of"] = previous
            record["retry_of_code"] = previous_code
            scheduled = None
            status = record["status"]
            if status in (503, 429) or (status == 409 and record.get("code") == "idempotency_request_in_progress"):
                try:
                    wait = float(record["retry_after"])
                except (TypeError, ValueError):
                    wait = RETRY_PAUSE
                    record["no_retry_after"] = True
            elif status == 0 or status >= 500:
                wait = RETRY_PAUSE
            else:
                return
            if time.time() + wait >= stop_at:
                # Told to come back after the run: honour it (no new request before then), then give up.
                time.sleep(max(0.0, stop_at - time.time()))
                return
            previous, previous_code = status, record.get("code")
            if wait >= KEEPALIVE_SECONDS:
                self.close()  # the server drops idle connections after its keep-alive: a client reconnects
            time.sleep(wait)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _bodies(ctx: dict, docs: dict[str, bytes], customer: int) -> dict[str, tuple[bytes, str]]:
    return {
        kind: multipart_body({"customer": customer, **BOX}, data, filename=f"{kind}.pdf") for kind, data in docs.items()
    }


def quiet_process(port: int, ctx: dict, plan: dict, out_path: str) -> None:
    """Open loop: a stamp request every 1/3 s from ``t0`` to ``end``, each on its own thread; plus the
    readiness prober."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # stopped by the parent: go quietly
    docs = documents()
    rng = random.Random(plan["seed"])
    bodies = [_bodies(ctx, docs, c) for c in ctx["customers"]]
    records: list = []
    probes: list = []
    phase_of = plan_phase(plan)
    local = threading.local()

    def one(n: int, scheduled: float, kind: str) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(port, ctx, QUIET, phase_of, records)
        body, ctype = bodies[n % len(bodies)][kind]
        client.stamp(body, ctype, stop_at=plan["end"] + 30, scheduled=scheduled, kind=kind)

    def prober() -> None:
        while time.time() < plan["end"]:
            began = time.time()
            ok = False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", plan.get("probe_port", port), timeout=1.0)
                conn.request("GET", "/readyz")
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                conn.close()
            except (OSError, http.client.HTTPException):
                pass
            probes.append({"t": began, "ok": ok, "phase": phase_of(began)})
            time.sleep(max(0.0, began + 1.0 - time.time()))

    from concurrent.futures import ThreadPoolExecutor

    threading.Thread(target=prober, daemon=True).start()
    with ThreadPoolExecutor(max_workers=64) as pool:
        n = 0
        while True:
            scheduled = plan["t0"] + n / QUIET_RATE
            if scheduled >= plan["end"]:
                break
            time.sleep(max(0.0, scheduled - time.time()))
            kind = "scan" if rng.random() < plan["scan_share"] else "text"
            pool.submit(one, n, scheduled, kind)
            n += 1
    Path(out_path).write_text(json.dumps({"requests": records, "probes": probes}))


def surge_process(port: int, ctx: dict, plan: dict, out_path: str) -> None:
    """Closed loop: client i starts at t1 + i * ramp / clients and sends until ``end``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # stopped by the parent: go quietly
    docs = documents()
    records: list = []
    phase_of = plan_phase(plan)
    clients = plan["clients"]

    def run(i: int) -> None:
        rng = random.Random(plan["seed"] * 1000 + i)
        customer = ctx["customers"][i % len(ctx["customers"])]
        bodies = _bodies(ctx, docs, customer)
        client = Client(port, ctx, SURGE, phase_of, records)
        time.sleep(max(0.0, plan["t1"] + i * plan["ramp"] / clients - time.time()))
        while time.time() < plan["end"]:
            body, ctype = bodies["scan" if rng.random() < plan["scan_share"] else "text"]
            client.stamp(body, ctype, stop_at=plan["end"])
        client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    ops: list = []  # --mixed: registrations, orders, payments, status reads
    if plan.get("buyers"):
        buyers = plan["buyers"]
        threads += [threading.Thread(target=buyer, args=(port, ctx, plan, i, ops), daemon=True) for i in range(buyers)]
        threads.append(threading.Thread(target=mode_watcher, args=(port, ctx, plan, ops), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, plan["end"] + REQUEST_TIMEOUT + 5 - time.time()))
    Path(out_path).write_text(json.dumps({"requests": list(records), "ops": list(ops)}))


# --------------------------------------------------------------------------- --mixed: buying and registering


def _call(conn_box: list, port: int, method: str, path: str, host: str, body: bytes | None, headers: dict) -> tuple:
    """One request on the caller's connection (made again after an error): (status, json or None, headers)."""
    try:
        if not conn_box:
            conn_box.append(http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT))
        conn = conn_box[0]
        conn.request(method, path, body=body, headers={"Host": host, **headers})
        resp = conn.getresponse()
        payload = resp.read()
        data = json.loads(payload) if "json" in resp.getheader("Content-Type", "") else None
        if resp.will_close:
            conn.close()
            conn_box.clear()
        return resp.status, data, resp
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if conn_box:
            conn_box[0].close()
            conn_box.clear()
        return 0, {"code": f"({type(exc).__name__})"}, None


def buyer(port: int, ctx: dict, plan: dict, i: int, ops: list) -> None:
    """A closed-loop client of the surge channel that registers customers and buys (and pays) quota.
    A 503 is retried after its ``Retry-After`` (same ``Idempotency-Key``); a paid order's webhook is
    re-sent each second until it is answered 200."""
    from billing.providers import simulator

    rng = random.Random(plan["seed"] * 7919 + i)
    conn: list = []
    auth = {"Authorization": f"Bearer {ctx['key']}", "Content-Type": "application/json"}
    time.sleep(max(0.0, plan["t1"] + i * plan["ramp"] / max(1, plan["buyers"]) - time.time()))
    while time.time() < plan["end"]:
        register = rng.random() < 0.25
        if register:
            op, path = "register", "/api/v1/customers"
            body = json.dumps({"external_ref": f"mixed-{uuid.uuid4().hex[:12]}", "name": "Mixed bench"}).encode()
        else:
            op, path = "order", "/api/v1/orders"
            body = json.dumps({"customer": rng.choice(ctx["customers"]), "quantity": 1}).encode()
        key = uuid.uuid4().hex
        while True:
            sent = time.time()
            status, data, resp = _call(conn, port, "POST", path, ctx["host"], body, {**auth, "Idempotency-Key": key})
            code = (data or {}).get("code") if status not in (200, 201) else None
            ops.append({"op": op, "t": sent, "status": status, "code": code, "lat": time.time() - sent})
            if status == 201 or status in (400, 404, 409, 422):
                break
            wait = RETRY_PAUSE
            if resp is not None and resp.getheader("Retry-After"):
                wait = float(resp.getheader("Retry-After"))
            if time.time() + wait >= plan["end"]:
                time.sleep(max(0.0, plan["end"] - time.time()))
                return
            time.sleep(wait)
        if op == "order" and status == 201:
            order = data
            event = simulator.event_body(order_id=order["id"], amount_rupiah=order["total_rupiah"], succeeded=True)
            first = time.time()
            while True:  # as a provider: until the gateway answers 200, however long the surge lasts
                hook = {"Content-Type": "application/json", "Simulator-Signature": simulator.sign(event)}
                status, _data, _resp = _call(
                    conn, port, "POST", "/api/v1/payments/simulator/webhook", ctx["host"], event, hook
                )
                ops.append({"op": "pay", "t": first, "status": status, "order": order["id"]})
                if status == 200 or time.time() > plan["end"] + 120:
                    break
                time.sleep(RETRY_PAUSE)


def mode_watcher(port: int, ctx: dict, plan: dict, ops: list) -> None:
    """``GET /api/v1/status`` of the surge channel once a second: which classes are paused when."""
    conn: list = []
    while time.time() < plan["end"] + 5:
        began = time.time()
        status, data, _resp = _call(conn, port, "GET", "/api/v1/status", ctx["host"], None, {})
        if status == 200 and data:
            paused = sorted(f"{p['class']}({p['scope']})" for p in data.get("paused", []))
            ops.append({"op": "status", "t": began, "paused": paused})
        time.sleep(max(0.0, began + 1.0 - time.time()))


def plan_phase(plan: dict):
    def phase_of(t: float) -> str:
        if t < plan["t1"]:
            return "alone"
        return "ramp" if t < plan["t1"] + plan["ramp"] else "hold"

    return phase_of


# --------------------------------------------------------------------------- the servers and the faults


class Servers:
    """gunicorn, one Celery worker and beat, each in its own session so they can be stopped whole."""

    def __init__(self, port: int, env: dict, args):
        self.port, self.env, self.args = port, env, args
        self.procs: dict[str, subprocess.Popen] = {}
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.logs = {name: LOG_DIR / f"{name}.log" for name in ("web", "worker", "beat")}

    def start(self) -> None:
        web = [
            sys.executable,
            "-m",
            "gunicorn",
            "gateway.wsgi:application",
            "--config",
            "python:gateway.gunicorn_conf",  # as production: gthread, the probe listener
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "3",
            "--graceful-timeout",
            "5",
        ]
        if self.args.worker_class:
            web += ["--worker-class", self.args.worker_class]
        if self.args.threads:
            web += ["--threads", str(self.args.threads)]
        commands = {
            "web": web,
            "worker": [sys.executable, "-m", "celery", "-A", "gateway", "worker",
                       "--loglevel", self.args.worker_log_level, "--concurrency", "2",
                       "-Q", "stamping,credit,default", "-n", f"surgebench{self.port}@%h"],
            "beat": [sys.executable, "-m", "celery", "-A", "gateway", "beat", "--loglevel", "WARNING",
                     "-s", str(LOG_DIR / "celerybeat-schedule")],
        }  # fmt: skip
        for name, command in commands.items():
            with self.logs[name].open("w") as log:
                self.procs[name] = subprocess.Popen(  # noqa: S603 - our own processes, fixed arguments
                    command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, process_group=0
                )

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def children(self, name: str) -> list:
        import psutil

        try:
            return psutil.Process(self.procs[name].pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The whole session goes, pool processes included (a SIGKILLed parent would orphan them).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def http_get(port: int, path: str, host: str = "localhost", timeout: float = 2.0) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path, headers={"Host": host})
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return 0


def restart_embedded(deadline_s: float = 90.0) -> float:
    """``python -m gateway.embedded start`` until it succeeds (a killed postmaster's backends take a
    moment to go); returns how long it took."""
    began = time.monotonic()
    while True:
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "gateway.embedded", "start"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode == 0:
            return time.monotonic() - began
        if time.monotonic() - began > deadline_s:
            raise RuntimeError(f"could not restart the embedded services: {done.stderr[-500:]}")
        time.sleep(1.0)


def inject(fault: str, servers: Servers, outage: float, events: list) -> None:
    """SIGKILL one process of ``fault``'s kind and see it replaced or start it again."""
    import psutil

    from gateway import embedded

    t = time.time()
    if fault in ("worker", "web"):
        name = "worker" if fault == "worker" else "web"
        before = servers.children(name)
        if not before:
            events.append((t, fault, "no child process to kill"))
            return
        victim = before[0]
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = [p.pid for p in servers.children(name)]
            if victim.pid not in now and len(now) >= len(before):
                break
            time.sleep(0.2)
        events.append((t, fault, f"SIGKILL pid {victim.pid}; replaced after {time.time() - t:.1f}s"))
        return
    if fault == "redis":
        pid = int(embedded._redis_paths()[2].read_text().strip())
    else:
        pid = int((embedded._pg_dir() / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    time.sleep(outage)
    took = restart_embedded()
    events.append(
        (
            t,
            fault,
            f"SIGKILL pid {pid}; started again, up {time.time() - t:.1f}s after the kill (start took {took:.1f}s)",
        )
    )


# --------------------------------------------------------------------------- after the run (Django again)


def job_rows(job_ids: dict[str, list[str]]) -> dict[str, dict]:
    """Every job of the given ids, by id: status, unit, serial, hold, times."""
    from django_tenants.utils import schema_context

    from stamping.models import StampJob

    rows = {}
    for schema, ids in job_ids.items():
        with schema_context(schema):
            for start in range(0, len(ids), 2000):
                for row in StampJob.objects.filter(pk__in=ids[start : start + 2000]).values(
                    "id", "status", "unit", "serial", "hold_id", "finished_at", "created_at", "error_code"
                ):
                    row["schema"] = schema
                    rows[row["id"]] = row
    return rows


def wait_drained(job_ids: dict[str, list[str]], timeout: float) -> int:
    """Poll until every accepted job has ended or ``timeout`` passes; returns how many are still open."""
    from django.db import connections

    deadline = time.monotonic() + timeout
    total = sum(len(v) for v in job_ids.values())
    last_print = 0.0
    while True:
        try:
            rows = job_rows(job_ids)
            open_jobs = total - sum(1 for r in rows.values() if r["status"] in ("stamped", "failed"))
        except Exception as exc:  # noqa: BLE001 - the database may still be recovering from a fault
            connections.close_all()
            open_jobs = -1
            print(f"  (drain poll failed: {type(exc).__name__})", flush=True)
        if open_jobs == 0:
            return 0
        if time.monotonic() > deadline:
            return open_jobs
        if time.monotonic() - last_print > 15:
            print(f"  waiting for {open_jobs} of {total} accepted jobs to end ...", flush=True)
            last_print = time.monotonic()
        time.sleep(2.0)


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f} ms"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.astimezone(UTC).timestamp()


def ledger_check(rows: dict[str, dict], accepted: dict[str, str], env: dict) -> dict:
    """The accepted jobs against the ledger and the serial registry, and ``manage.py reconcile``."""
    from billing.ledger.models import Transfer
    from issuer.models import Serial

    out = {"missing": 0, "wrong_state": 0, "open": 0, "serial_mismatch": 0, "serial_twice": 0, "notes": []}
    for job_id in accepted:
        row = rows.get(job_id)
        if row is None:
            out["missing"] += 1
            if len(out["notes"]) < 10:
                out["notes"].append(f"202 for {job_id} but no such job")
        elif row["status"] not in ("stamped", "failed"):
            out["open"] += 1
        elif (row["status"], row["unit"]) not in (("stamped", "committed"), ("failed", "released")):
            out["wrong_state"] += 1
    ended = [r for r in rows.values() if r["status"] in ("stamped", "failed")]
    resolution = {}
    holds = [r["hold_id"] for r in ended]
    for start in range(0, len(holds), 2000):
        resolution.update(
            Transfer.objects.filter(pending_id__in=holds[start : start + 2000]).values_list("pending_id", "state")
        )
    for r in ended:
        want = "posted" if r["status"] == "stamped" else "voided"
        if resolution.get(r["hold_id"]) != want:
            out["wrong_state"] += 1
            if len(out["notes"]) < 10:
                out["notes"].append(f"{r['id']} {r['status']} but its hold is {resolution.get(r['hold_id'])}")
    stamped = [r for r in ended if r["status"] == "stamped"]
    refs = {f"{r['schema']}:{r['id']}": r for r in stamped}
    used: dict[str, list[str]] = {}
    keys = list(refs)
    for start in range(0, len(keys), 2000):
        for job_ref, serial in Serial.objects.filter(job_ref__in=keys[start : start + 2000], status="used").values_list(
            "job_ref", "serial"
        ):
            used.setdefault(job_ref, []).append(serial)
    for ref, r in refs.items():
        if used.get(ref) != [r["serial"]]:
            out["serial_mismatch"] += 1
            if len(out["notes"]) < 10:
                out["notes"].append(f"{r['id']} stamped with {r['serial']!r}; used serials for it: {used.get(ref)}")
    serials = Counter(r["serial"] for r in stamped)
    out["serial_twice"] = sum(1 for n in serials.values() if n > 1)
    done = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "reconcile", "--no-store"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    out["reconcile_ok"] = done.returncode == 0
    out["reconcile"] = [line for line in done.stdout.splitlines() if "FAIL" in line or line.startswith("       -")]
    out["lost"] = out["missing"] + out["wrong_state"] + out["serial_mismatch"] + out["serial_twice"] + out["open"]
    return out


def report(records: list[dict], probes: list[dict], rows: dict, plan: dict, ledger: dict, events: list) -> None:
    t1, end = plan["t1"], plan["end"]
    quiet = [r for r in records if r["ch"] == QUIET]

    def lat(phase_filter, kind: str | None = None) -> list[float]:
        return [
            r["lat"]
            for r in quiet
            if phase_filter(r["phase"]) and r["status"] != 0 and kind in (None, r.get("kind"))
        ]

    alone, surge = lat(lambda p: p == "alone"), lat(lambda p: p != "alone")
    hold = lat(lambda p: p == "hold")
    p99_alone, p99_surge = quantile(alone, 0.99), quantile(surge, 0.99)
    ratio = (p99_surge / p99_alone) if p99_alone and p99_surge else None
    print("\nquiet channel, stamp request (every attempt, from its scheduled send):")
    print(f"  alone  n={len(alone):5d}  p50 {ms(quantile(alone, 0.5))}  p99 {ms(p99_alone)}")
    print(
        f"  surge  n={len(surge):5d}  p50 {ms(quantile(surge, 0.5))}  p99 {ms(p99_surge)}  "
        f"(hold only: p99 {ms(quantile(hold, 0.99))})"
    )
    for kind in ("text", "scan"):
        alone_k, surge_k = lat(lambda p: p == "alone", kind), lat(lambda p: p != "alone", kind)
        if alone_k or surge_k:
            print(
                f"    {kind:4s}: alone p50 {ms(quantile(alone_k, 0.5))} max {ms(max(alone_k, default=None))}; "
                f"surge p50 {ms(quantile(surge_k, 0.5))} p99 {ms(quantile(surge_k, 0.99))} (n={len(surge_k)})"
            )
    print(f"  p99 ratio surge/alone: {'-' if ratio is None else f'{ratio:.1f}'}")

    # Accepted jobs: the 202s (a replayed 202 names the job its first attempt created).
    accepted: dict[str, dict] = {}
    for r in records:
        if r["status"] == 202 and r.get("job") and r["job"] not in accepted:
            accepted[r["job"]] = r
    tts = {"alone": [], "surge": []}
    eta_err: dict[str, list[float]] = {QUIET: [], SURGE: []}
    eta_err_send: dict[str, list[float]] = {QUIET: [], SURGE: []}
    late = Counter()
    eta_by_when: dict[str, list[tuple[float, bool]]] = {"ramp": [], "hold": [], "after": []}
    eta_rows: list[dict] = []
    for job_id, r in accepted.items():
        row = rows.get(job_id)
        finished = epoch(row["finished_at"]) if row else None
        if finished is None:
            continue
        if r["ch"] == QUIET and row["status"] == "stamped":
            tts["alone" if r["phase"] == "alone" else "surge"].append(finished - r["first_sent"])
        if r.get("eta"):
            # The promise is a duration in the 202: a client can count it only from when it reads the
            # answer. (Counted from the attempt's send, it would also charge the request's own time, and
            # for the quiet channel's open loop the client's lateness behind its schedule: printed too.)
            actual = finished - r["answered"]
            eta_err[r["ch"]].append(abs(actual - r["eta"]) / r["eta"])
            from_send = finished - r["sent"]
            eta_err_send[r["ch"]].append(abs(from_send - r["eta"]) / r["eta"])
            late[r["ch"]] += actual > r["eta"]
            if r["phase"] != "alone":
                when = "ramp" if r["phase"] == "ramp" else ("hold" if finished <= end else "after")
                eta_by_when[when].append((abs(actual - r["eta"]) / r["eta"], actual > r["eta"]))
            eta_rows.append(
                {"ch": r["ch"], "sent": r["sent"], "answered": r["answered"], "eta": r["eta"], "actual": actual,
                 "from_send": from_send, "position": r.get("position")}
            )  # fmt: skip
    (LOG_DIR / "last-etas.json").write_text(json.dumps(eta_rows))  # for a closer look at the promises
    print("quiet channel, time to stamped (finished_at - first send):")
    for phase in ("alone", "surge"):
        v = tts[phase]
        print(f"  {phase:5s}  n={len(v):5d}  p50 {ms(quantile(v, 0.5))}  p99 {ms(quantile(v, 0.99))}")
    every = eta_err[QUIET] + eta_err[SURGE]
    print("ETA error |actual - promised| / promised (accepted jobs that ended; actual from the 202's arrival):")
    for name, v in (("all", every), (QUIET, eta_err[QUIET]), (SURGE, eta_err[SURGE])):
        later = sum(late.values()) if name == "all" else late[name]
        print(
            f"  {name:10s} n={len(v):6d}  median {pct(quantile(v, 0.5))}  p90 {pct(quantile(v, 0.9))}  "
            f"finished later than promised {later}"
        )
    # Where the error comes from: promises made during the ramp (the cost per stamp rises as the web
    # tier takes more of the CPU), those kept while the load ran, and those of jobs that finished after
    # the load stopped (they ran partly on a machine the surge no longer loaded: faster than promised).
    print("  by when (phase 2; 'after': accepted under load, finished after it stopped):")
    for when, pairs in eta_by_when.items():
        errors = [e for e, _ in pairs]
        print(
            f"  {when:10s} n={len(errors):6d}  median {pct(quantile(errors, 0.5))}  p90 {pct(quantile(errors, 0.9))}"
            f"  later than promised {sum(1 for _, is_late in pairs if is_late)}"
        )
    sent_all = eta_err_send[QUIET] + eta_err_send[SURGE]
    print("  the same with actual counted from the accepted attempt's send (request time included):")
    for name, v in (("all", sent_all), (QUIET, eta_err_send[QUIET]), (SURGE, eta_err_send[SURGE])):
        print(f"  {name:10s} n={len(v):6d}  median {pct(quantile(v, 0.5))}  p90 {pct(quantile(v, 0.9))}")

    stamped_at = sorted(epoch(row["finished_at"]) for row in stamped_rows_between(plan["schemas"], t1, end))
    rate_surge = len(stamped_at) / (end - t1)
    hold_start = t1 + plan["ramp"]
    in_hold = [t for t in stamped_at if t >= hold_start]
    rate_hold = len(in_hold) / max(1e-9, end - hold_start)
    after = sorted(t for t in (epoch(row["finished_at"]) for row in rows.values()) if t is not None and t > end)
    rate_after = f", {len(after) / max(1e-9, after[-1] - end):.1f}/s once the load stopped" if len(after) > 1 else ""
    print(
        f"stamps completed (both channels, from finished_at): {rate_surge:.1f}/s during phase 2, "
        f"{rate_hold:.1f}/s during the hold{rate_after}"
    )

    by_status = Counter(r["status"] for r in records)
    by_code = Counter((r["status"], r.get("code")) for r in records if r["status"] != 202)
    print("answers by status: " + ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(by_status.items())))
    for ch in (QUIET, SURGE):
        c = Counter((r["status"], r.get("code")) for r in records if r["ch"] == ch and r["status"] != 202)
        n202 = sum(1 for r in records if r["ch"] == ch and r["status"] == 202)
        detail = ", ".join(f"{s} {code}: {n}" for (s, code), n in sorted(c.items(), key=lambda x: -x[1]))
        print(f"  {ch}: 202: {n202}" + (f"; {detail}" if detail else ""))
    five_xx = sum(n for (s, _), n in by_code.items() if s >= 500 and s != 503)
    no_retry_after = sum(1 for r in records if r.get("no_retry_after"))
    print(
        f"5xx other than 503: {five_xx}; 503 by code: "
        + (", ".join(f"{code}: {n}" for (s, code), n in by_code.items() if s == 503) or "none")
        + f"; 503/429 without Retry-After: {no_retry_after}; 429: {by_status.get(429, 0)}; "
        f"no answer (connection error/timeout): {by_status.get(0, 0)}"
    )
    retried = [r for r in records if r["status"] in (503, 429)]
    if retried:
        waits = Counter(r.get("retry_after") for r in retried)
        print("  Retry-After values given: " + ", ".join(f"{k}s x{n}" for k, n in waits.most_common(6)))
        longest: dict = {}  # code -> (the longest Retry-After it gave, when: seconds into phase 2)
        for r in retried:
            with contextlib.suppress(TypeError, ValueError):
                wait, code = int(r.get("retry_after")), r.get("code")
                if wait > longest.get(code, (0, 0))[0]:
                    longest[code] = (wait, r["sent"] - plan["t1"])
        print(
            "  longest Retry-After by code: "
            + ", ".join(f"{code} {wait}s (at +{at:.0f}s)" for code, (wait, at) in sorted(longest.items()))
        )
        again = [r for r in records if r.get("retry_of") in (503, 429)]
        refused = sum(1 for r in again if r["status"] in (503, 429))
        print(
            f"  retries after waiting Retry-After: {len(again)}, refused again: {refused}"
            + (f" ({refused / len(again):.0%})" if again else "")
        )
        for code, n in Counter(r.get("retry_of_code") for r in again).most_common():
            then = Counter(r.get("code") for r in again if r.get("retry_of_code") == code and r["status"] in (503, 429))
            print(
                f"    after {code}: {n} retries, refused again {sum(then.values())} ("
                + (", ".join(f"{c} {k}" for c, k in then.most_common()) or "none")
                + ")"
            )
    bad_probes = Counter(p["phase"] for p in probes if not p["ok"])
    print(
        f"/readyz (1 s timeout, once a second): {len(probes)} probes, failed: "
        + (", ".join(f"{k} {n}" for k, n in bad_probes.items()) or "none")
    )
    for t, fault, what in events:
        print(f"fault {fault} at +{t - t1:.1f}s into phase 2: {what}")

    print(
        f"ledger: {len(accepted)} accepted (202) jobs; missing {ledger['missing']}, still open {ledger['open']}, "
        f"wrong end state {ledger['wrong_state']}, serial mismatch {ledger['serial_mismatch']}, serials used "
        f"twice {ledger['serial_twice']}; manage.py reconcile {'clean' if ledger['reconcile_ok'] else 'FAILED'}"
    )
    ended = Counter(rows[j]["status"] for j in accepted if j in rows)
    failed_codes = Counter(rows[j]["error_code"] for j in accepted if j in rows and rows[j]["status"] == "failed")
    print(f"  ended: {dict(ended)}" + (f"; failed by code: {dict(failed_codes)}" if failed_codes else ""))
    for note in ledger["notes"] + ledger["reconcile"]:
        print(f"  {note}")
    ratio_s = "-" if ratio is None else f"{ratio:.1f}"
    print(
        f"surge: quiet p99 ratio {ratio_s}, ETA error median {pct(quantile(every, 0.5))} "
        f"p90 {pct(quantile(every, 0.9))}, {rate_surge:.1f} stamps/s, 5xx(non-503) {five_xx}, lost {ledger['lost']}"
    )


def report_mixed(records: list[dict], ops: list[dict], plan: dict) -> None:
    """--mixed: were paid orders credited within a minute, and did refusals fall on the lowest classes first?"""
    from django_tenants.utils import schema_context

    from billing.retail.models import Order

    t1 = plan["t1"]
    first_pay = {}
    for o in ops:
        if o["op"] == "pay":
            first_pay[o["order"]] = min(first_pay.get(o["order"], o["t"]), o["t"])
    with schema_context(SURGE):
        found = Order.objects.filter(pk__in=list(first_pay)).values("id", "status", "credited_at")
        orders = {o["id"]: o for o in found}
    credited = {k: epoch(o["credited_at"]) - first_pay[k] for k, o in orders.items() if o["credited_at"]}
    waits = sorted(credited.values())
    pay_refused = sum(1 for o in ops if o["op"] == "pay" and o["status"] != 200)
    print("\n--mixed (surge channel also buys and registers):")
    print(
        f"  orders paid (webhook sent): {len(first_pay)}; credited: {len(credited)}; not credited: "
        f"{len(first_pay) - len(credited)}; payment webhooks answered other than 200: {pay_refused}"
    )
    print(
        f"  payment -> credited: p50 {ms(quantile(waits, 0.5))}, p99 {ms(quantile(waits, 0.99))}, max "
        f"{ms(waits[-1] if waits else None)}; within 60 s: {sum(1 for w in waits if w <= 60)}/{len(first_pay)}"
    )
    classes = [  # lowest class first
        ("5 new customers", [o for o in ops if o["op"] == "register"]),
        ("4 new purchases", [o for o in ops if o["op"] == "order"]),
        ("3 new stamp requests (surge)", [r | {"t": r["sent"]} for r in records if r["ch"] == SURGE]),
        ("3 new stamp requests (quiet)", [r | {"t": r["sent"]} for r in records if r["ch"] == QUIET]),
    ]
    print("  refusals (503) by class, lowest class first: the class's first one, then by code (s into phase 2):")
    by_code_all: dict = {}
    firsts = []
    for name, attempts in classes:
        refused = [a for a in attempts if a["status"] == 503]
        codes = Counter(a.get("code") for a in refused)
        first = {}
        for a in refused:
            first[a.get("code")] = min(first.get(a.get("code"), a["t"]), a["t"])
            entry = by_code_all.setdefault(a.get("code"), {})
            entry[name] = entry.get(name, 0) + 1
        ok = sum(1 for a in attempts if a["status"] in (201, 202))
        lat = [a["lat"] for a in attempts if a["status"] in (201, 202)]
        class_first = min(first.values()) if first else None
        if class_first is not None and "quiet" not in name:
            firsts.append((class_first, name))
        by_code = ", ".join(f"{c}: {n}, first +{first[c] - t1:.1f}s" for c, n in codes.most_common())
        print(
            f"    {name:29s} attempts {len(attempts):6d}, accepted {ok:6d} (p99 {ms(quantile(lat, 0.99))}), "
            f"503 {len(refused):6d} ({len(refused) / max(1, len(attempts)):.0%}), first "
            + (f"+{class_first - t1:.1f}s" if class_first is not None else "never")
            + (f" ({by_code})" if by_code else "")
        )
    print("  refusals (503) by code, with the classes refused with it:")
    for code, per_class in sorted(by_code_all.items(), key=lambda item: -sum(item[1].values())):
        spread = ", ".join(f"{name}: {n}" for name, n in per_class.items())
        print(f"    {str(code):26s} {sum(per_class.values()):6d} ({spread})")
    order = " < ".join(f"{name} +{t - t1:.1f}s" for t, name in sorted(firsts))
    ranked = [name for name, _attempts in classes if name in {n for _t, n in firsts}]  # lowest class first
    lowest_first = [name for _t, name in sorted(firsts)] == ranked
    print(
        f"  first refusal of each class (surge channel): {order or 'none'}; lowest class first: "
        + ("yes" if lowest_first else "no")
    )
    changes, previous = [], []
    for o in sorted((o for o in ops if o["op"] == "status"), key=lambda o: o["t"]):
        if o["paused"] != previous:
            changes.append(f"+{o['t'] - t1:.0f}s {','.join(o['paused']) or 'nothing'}")
            previous = o["paused"]
    print("  paused (GET /api/v1/status, surge channel): " + ("; ".join(changes) or "never"))


def stamped_rows_between(schemas: list[str], t_from: float, t_to: float) -> list[dict]:
    from django_tenants.utils import schema_context

    from stamping.models import StampJob

    lo, hi = datetime.fromtimestamp(t_from, UTC), datetime.fromtimestamp(t_to, UTC)
    rows = []
    for schema in schemas:
        with schema_context(schema):
            rows += list(
                StampJob.objects.filter(status="stamped", finished_at__gte=lo, finished_at__lt=hi).values("finished_at")
            )
    return rows


def drop_documents(schemas: list[str]) -> int:
    """Delete the bench channels' document bytes: the issuer's stamped PDFs and the uploads of ended
    jobs (each run writes about 1.5 GB of them: a database that grows run after run makes each run
    slower than the last, and fills the disk). The jobs, the serials and the ledger stay, as the
    retention sweep leaves them. Returns the stamped documents deleted."""
    from django.db import connection
    from django_tenants.utils import schema_context

    from issuer.models import StampedDocument
    from stamping.models import JobDocument

    deleted, _ = StampedDocument.objects.filter(serial__channel__schema_name__in=schemas).delete()
    tables = [f"public.{StampedDocument._meta.db_table}"]
    for schema in schemas:
        with schema_context(schema):
            JobDocument.objects.filter(job__status__in=["stamped", "failed"]).delete()
        tables.append(f"{connection.ops.quote_name(schema)}.{JobDocument._meta.db_table}")
    # Vacuumed now, not by autovacuum in the middle of the next run's measurements.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {', '.join(tables)}")
    return deleted


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--alone",
        type=float,
        default=60.0,
        help="phase 1 length, s (60: 180 quiet requests, so that their p99 is not simply the slowest one)",
    )
    parser.add_argument("--ramp", type=float, default=20.0, help="phase 2 ramp, s")
    parser.add_argument("--hold", type=float, default=60.0, help="phase 2 hold at --clients, s")
    parser.add_argument("--clients", type=int, default=50, help="closed-loop clients of the surge channel")
    parser.add_argument("--scan-share", type=float, default=0.1, help="share of requests with the 800 KB scan")
    parser.add_argument(
        "--worker-log-level",
        default="WARNING",
        help="the Celery worker's log level: INFO logs every drainer slice (its time and jobs) in "
        ".data/bench-surge/worker.log, and costs the workers enough to lower the figures: for diagnosis only",
    )
    parser.add_argument("--quick", action="store_true", help="short phases (10/10/25 s, 30 clients): a smoke run")
    for fault in FAULTS:
        parser.add_argument(
            f"--kill-{fault}",
            type=float,
            nargs="?",
            const=-1.0,
            default=None,
            metavar="AT",
            help=f"SIGKILL the {fault} AT s into phase 2 (default: {FAULT_AT[fault] * 100:.0f}%% into the hold) "
            "and restart it",
        )
    parser.add_argument("--faults", default="", help="'all' or a comma list of " + ",".join(FAULTS))
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis/PostgreSQL stay down")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="max wait for accepted jobs to end, s")
    parser.add_argument("--deadline", type=float, default=None, help="hard limit for the whole run, s")
    parser.add_argument("--redis-db", type=int, default=3, help="the servers' Redis database (flushed)")
    parser.add_argument("--worker-class", default=None, help="gunicorn worker class (default: gunicorn's)")
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--backlog-limit",
        type=int,
        default=None,
        help="set STAMPING_CHANNEL_BACKLOG_LIMIT for the servers (default: the product's own)",
    )
    parser.add_argument("--mixed", action="store_true", help="the surge channel also registers, buys and pays")
    parser.add_argument("--buyers", type=int, default=10, help="--mixed: closed-loop buying/registering clients")
    parser.add_argument(
        "--brownout-auto", default="registrations=8/3,purchases=15/5",
        help="--mixed: BROWNOUT_AUTO_CHANNEL for the servers (class=start/stop seconds of backlog age)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.alone, args.ramp, args.hold = 10.0, 10.0, 25.0
        if "--clients" not in (argv or sys.argv):
            args.clients = 30
        if "--drain-timeout" not in (argv or sys.argv):
            args.drain_timeout = 300.0
    chosen = set(FAULTS) if args.faults.strip() == "all" else {f.strip() for f in args.faults.split(",") if f.strip()}
    unknown = chosen - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    args.fault_at = {}
    for fault in FAULTS:
        at = getattr(args, f"kill_{fault}")
        if at is None and fault in chosen:
            at = -1.0
        if at is not None:
            args.fault_at[fault] = args.ramp + FAULT_AT[fault] * args.hold if at < 0 else at
    if args.deadline is None:
        args.deadline = args.alone + args.ramp + args.hold + args.drain_timeout + 300
    return args


class Deadline(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()

    def on_alarm(*_):
        raise Deadline(f"the hard deadline of {args.deadline:.0f}s passed")

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.alarm(int(args.deadline))
    pg_before, redis_before, redis_url = prepare_services(args.redis_db)
    servers = None
    loaders: list = []
    code = 1
    try:
        ctx = seed(args.clients, extra_stock=20_000 if args.mixed else 0)
        drop_documents([QUIET, SURGE])  # an interrupted run's, if any
        checkpoint()
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        port = 18000 + random.randrange(1000)  # noqa: S311 - a port, not a secret
        env = dict(os.environ, REDIS_URL=redis_url, LOG_LEVEL="WARNING", DJANGO_SECRET_KEY=settings.SECRET_KEY,
                   PAYMENT_SIMULATOR_SECRET=settings.PAYMENT_SIMULATOR_SECRET)  # fmt: skip
        env["GATEWAY_PROBE_BIND"] = f"127.0.0.1:{port + 1000}"  # the probe listener (gateway.gunicorn_conf)
        if args.backlog_limit is not None:
            env["STAMPING_CHANNEL_BACKLOG_LIMIT"] = str(args.backlog_limit)
        if args.mixed:
            env["BROWNOUT_AUTO_CHANNEL"] = args.brownout_auto
        servers = Servers(port, env, args)
        servers.start()
        warm_up(port, ctx, servers)
        print(f"gunicorn 3 workers on 127.0.0.1:{port}, celery worker (concurrency 2) and beat; logs in {LOG_DIR}")
        print(
            f"phases: alone {args.alone:.0f}s, ramp to {args.clients} clients {args.ramp:.0f}s, hold "
            f"{args.hold:.0f}s; quiet {QUIET_RATE:.0f}/s open loop; scan share {args.scan_share:.0%}; "
            f"faults: {', '.join(f'{f} at +{t:.0f}s' for f, t in args.fault_at.items()) or 'none'}",
            flush=True,
        )

        t0 = time.time() + 1.0
        plan = {
            "t0": t0,
            "t1": t0 + args.alone,
            "ramp": args.ramp,
            "end": t0 + args.alone + args.ramp + args.hold,
            "clients": args.clients,
            "scan_share": args.scan_share,
            "seed": args.seed,
            "schemas": [QUIET, SURGE],
            "probe_port": port + 1000,
            "buyers": args.buyers if args.mixed else 0,
        }
        tmp = LOG_DIR / f"run-{port}"
        tmp.mkdir(parents=True, exist_ok=True)
        mpctx = mp.get_context("fork")
        outputs = {QUIET: tmp / "quiet.json", SURGE: tmp / "surge.json"}
        loaders = [
            mpctx.Process(target=quiet_process, args=(port, ctx[QUIET], plan, str(outputs[QUIET])), daemon=True),
            mpctx.Process(target=surge_process, args=(port, ctx[SURGE], plan, str(outputs[SURGE])), daemon=True),
        ]
        for p in loaders:
            p.start()
        events: list = []
        faults = sorted(args.fault_at.items(), key=lambda x: x[1])
        for fault, at in faults:
            time.sleep(max(0.0, plan["t1"] + at - time.time()))
            print(f"  fault: killing {fault} at +{time.time() - plan['t1']:.0f}s", flush=True)
            inject(fault, servers, args.outage, events)
            print(f"    {events[-1][2]}", flush=True)
        for p in loaders:
            p.join(timeout=max(1.0, plan["end"] + REQUEST_TIMEOUT + 40 - time.time()))
        records, probes, ops = [], [], []
        for name, path in outputs.items():
            if not path.exists():
                raise RuntimeError(f"the {name} load generator left no results")
            data = json.loads(path.read_text())
            records += data["requests"]
            probes += data.get("probes", [])
            ops += data.get("ops", [])
        print(
            f"load done: {len(records)} attempts; waiting for the accepted jobs to end "
            f"(at most {args.drain_timeout:.0f}s) ...",
            flush=True,
        )
        job_ids: dict[str, list[str]] = {QUIET: [], SURGE: []}
        for r in records:
            if r["status"] == 202 and r.get("job"):
                job_ids[r["ch"]].append(r["job"])
        job_ids = {k: sorted(set(v)) for k, v in job_ids.items()}
        drain_began = time.monotonic()
        still_open = wait_drained(job_ids, args.drain_timeout)
        print(
            f"drained in {time.monotonic() - drain_began:.0f}s" + (f"; {still_open} still open" if still_open else "")
        )
        servers.stop()
        servers = None
        rows = job_rows(job_ids)
        accepted = {j: ch for ch, ids in job_ids.items() for j in ids}
        ledger = ledger_check(rows, accepted, env)
        report(records, probes, rows, plan, ledger, events)
        if args.mixed:
            report_mixed(records, ops, plan)
        print(f"(run took {time.monotonic() - began:.0f}s)")
        drop_documents([QUIET, SURGE])
        code = 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
    except Deadline as exc:
        print(f"\n{exc}; stopping everything this run started", file=sys.stderr)
    finally:
        signal.alarm(0)
        for p in loaders:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        if servers is not None:
            servers.stop()
        from gateway import embedded

        # A fault may have left a service down; leave each as it was found.
        if redis_before or pg_before:
            with contextlib.suppress(Exception):
                restart_embedded(30)
        if not redis_before:
            embedded.stop_redis()
        if not pg_before:
            embedded.stop_postgres()
    return code


def warm_up(port: int, ctx: dict, servers: Servers) -> None:
    """Wait until the web answers ready and one stamp per channel has gone all the way through."""
    deadline = time.monotonic() + 120
    while http_get(port, "/readyz") != 200:
        if time.monotonic() > deadline or not servers.alive():
            raise RuntimeError(f"the servers did not come up; see {LOG_DIR}")
        time.sleep(0.3)
    # Several stamps per channel at once, so every web worker has served one (its first request loads
    # what Django loads lazily) and the worker has stamped for both channels before the clock starts.
    docs = {"text": documents()["text"]}
    jobs: dict[str, list[str]] = {QUIET: [], SURGE: []}
    for name in (QUIET, SURGE):
        records: list = []
        body, ctype = _bodies(ctx[name], docs, ctx[name]["customers"][0])["text"]

        def send(name=name, body=body, ctype=ctype, records=records) -> None:
            client = Client(port, ctx[name], name, lambda _t: "warm-up", records)
            client.stamp(body, ctype, stop_at=time.time() + 60)
            client.close()

        threads = [threading.Thread(target=send) for _ in range(WARM_UP_STAMPS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs[name] = [r["job"] for r in records if r.get("job")]
        if len(jobs[name]) < WARM_UP_STAMPS:
            raise RuntimeError(f"warm-up stamps on {name} were refused: {[r for r in records if not r.get('job')]}")
    while True:
        rows = job_rows(jobs)
        if all(rows.get(j, {}).get("status") in ("stamped", "failed") for ids in jobs.values() for j in ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm-up stamps did not finish; see {LOG_DIR}")
        time.sleep(0.3)
    from django.db import connections

    connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
