"""API throughput on loopback: requests/s and p50/p99 per scenario, with a yardstick in the same run.

Run from the repository root (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set; the
data goes to a database of its own, ``gateway_bench`` or ``<name>_bench``: see ``bench.common``):

    .venv/bin/python bench/api.py [--seconds 8] [--rounds 3] [--clients 16] [--workers 3] [--threads 4]

It starts gunicorn (gthread) on 127.0.0.1 with a bench-only channel, then drives, one after the other:
  - ``db-read``: GET of a bare endpoint that does one database read (the yardstick);
  - ``stamp-request``: POST /api/v1/stamps with a small PDF (auth, rate limit, document check, hold,
    job row, enqueue) - no worker runs, so this measures the request path only;
  - ``order+credit``: POST /api/v1/orders then the provider's signed webhook that credits it;
  - ``verify-serial``: GET /api/v1/verify/{serial} on the issuer host.
The load generator shares the 2 cores with the server, so absolute figures are low; compare within
one run. Each scenario runs ``--seconds`` in all, split into ``--rounds`` windows taken in turn
(db-read, stamp, order, verify, db-read, ...), so a slow spell of a shared machine falls on all of
them; requests/s counts from the clients' first request to their last. Also times the rate-limit
check alone (in-process, real Redis). Jobs it leaves queued are failed and their units released at
the end; its broker queue lives in Redis database 2.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

CHANNEL = "benchapi"
HOST = "benchapi.localhost"


def setup() -> dict:
    from bench.common import setup_migrated

    setup_migrated("api")
    from django_tenants.utils import schema_context

    from billing import quota
    from gateway.apikeys import issue_api_key
    from issuer.services import stamp_document
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tenants.services import ensure_issuer, provision_channel
    from tests.fixtures.pdfs.factory import text_pdf

    ensure_issuer(domains=["localhost"])
    channel = Channel.objects.filter(code=CHANNEL).first() or provision_channel(
        code=CHANNEL, name="API bench", domain=HOST
    ).channel
    Channel.objects.filter(pk=channel.pk).update(
        rate_limit_per_key=1_000_000, rate_limit_per_channel=1_000_000, rate_limit_burst=1_000_000
    )
    channel.refresh_from_db()
    key = issue_api_key(channel=channel, name=f"bench {uuid.uuid4().hex[:6]}").plaintext
    quota.allocate_stock(channel_id=channel.pk, units=2_000_000, reference=f"bench-{uuid.uuid4().hex}")
    customers = []
    with schema_context(CHANNEL):
        for i in range(32):
            customer, _ = Customer.objects.get_or_create(external_ref=f"bench-{i}", defaults={"name": f"Bench {i}"})
            customers.append(customer.pk)
            ids = quota.reserve_stock(channel_id=channel.pk, customer_id=customer.pk,
                                      order_ref=f"bench-{uuid.uuid4().hex}", quantity=20_000,
                                      timeout=quota.DEFAULT_HOLD_TIMEOUT)
            quota.settle_reservation(reservation_ids=ids)
    serials = [
        stamp_document(channel=channel, data=text_pdf(), page=1, box=(40, 40, 140, 140)).serial for _ in range(20)
    ]
    return {"key": key, "customers": customers, "serials": serials, "pdf": text_pdf().hex()}


def multipart(fields: dict, pdf: bytes) -> tuple[bytes, str]:
    boundary = "bench" + secrets.token_hex(8)
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="b.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode() + pdf + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def client_loop(scenario: str, port: int, ctx: dict, seconds: float, threads: int, out) -> None:
    import django

    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()  # settings start nothing
    django.setup()
    from billing.providers import simulator

    pdf = bytes.fromhex(ctx["pdf"])
    # Bodies built once: the load generator shares the cores with the server, so it should cost little.
    stamp_bodies = {c: multipart({"customer": c, "page": 1, "llx": 40, "lly": 40, "urx": 140, "ury": 140}, pdf)
                    for c in ctx["customers"]}
    began = time.monotonic()
    stop = began + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth = {"Host": HOST, "Authorization": f"Bearer {ctx['key']}"}
        n = 0
        while time.monotonic() < stop:
            customer = ctx["customers"][(index + n) % len(ctx["customers"])]
            started = time.perf_counter()
            try:
                if scenario == "db-read":
                    conn.request("GET", "/api/v1/_bench/db-read", headers={"Host": HOST})
                    ok = conn.getresponse().read() and True
                elif scenario == "stamp-request":
                    body, ctype = stamp_bodies[customer]
                    conn.request("POST", "/api/v1/stamps", body=body, headers=auth | {"Content-Type": ctype})
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 202
                elif scenario == "order+credit":
                    conn.request("POST", "/api/v1/orders", body=json.dumps({"customer": customer, "quantity": 1}),
                                 headers=auth | {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    order = json.loads(resp.read())
                    event = simulator.event_body(order_id=order["id"], amount_rupiah=order["total_rupiah"],
                                                 succeeded=True)
                    conn.request("POST", "/api/v1/payments/simulator/webhook", body=event,
                                 headers={"Host": HOST, "Content-Type": "application/json",
                                          simulator.SIGNATURE_HEADER: simulator.sign(event)})
                    resp = conn.getresponse()
                    ok = resp.status == 200 and json.loads(resp.read())["order_status"] == "credited"
                else:  # verify-serial
                    serial = ctx["serials"][n % len(ctx["serials"])]
                    conn.request("GET", f"/api/v1/verify/{serial}", headers={"Host": "localhost"})
                    resp = conn.getresponse()
                    ok = resp.status == 200 and resp.read() and True
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[index].append(time.perf_counter() - started)
            errors[index] += 0 if ok else 1
            n += 1
        conn.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(([x for lst in latencies for x in lst], sum(errors), began, time.monotonic()))


def measure(scenario: str, port: int, ctx: dict, args) -> dict:
    """One timed window of ``scenario``: its latencies, errors and length (from the clients' own clocks,
    so process start-up is not counted)."""
    mpctx = mp.get_context("fork")
    out = mpctx.Queue()
    per_proc = max(1, args.clients // 2)
    procs = [mpctx.Process(target=client_loop, args=(scenario, port, ctx, args.seconds, per_proc, out))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    return {"latencies": [x for r in results for x in r[0]], "errors": sum(r[1] for r in results), "elapsed": elapsed}


def summarise(windows: list[dict]) -> dict:
    lat = sorted(x for w in windows for x in w["latencies"])
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0] * 99
    return {"rps": len(lat) / sum(w["elapsed"] for w in windows), "p50": q[49] * 1000, "p99": q[98] * 1000,
            "errors": sum(w["errors"] for w in windows), "n": len(lat),
            "per_round": [len(w["latencies"]) / w["elapsed"] for w in windows]}


def ratelimit_p99() -> tuple[float, float]:
    from gateway.ratelimit import check_rate_limit
    from tenants.models import Channel

    channel = Channel.objects.get(code=CHANNEL)
    samples = []
    for _ in range(3000):
        t = time.perf_counter()
        check_rate_limit(channel=channel, api_key_id=1)
        samples.append(time.perf_counter() - t)
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1000, q[98] * 1000


def cleanup() -> int:
    from django_tenants.utils import schema_context

    from stamping import services
    from stamping.models import StampJob

    with schema_context(CHANNEL):
        open_jobs = list(StampJob.objects.filter(status__in=["queued", "processing"]).values_list("pk", flat=True))
        for job_id in open_jobs:
            services._fail(StampJob.objects.get(pk=job_id), code="bench", detail="left by bench/api.py")
    return len(open_jobs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ctx = setup()
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    port = 18000 + secrets.randbelow(1000)
    redis_url = settings.REDIS_URL + ("&" if "?" in settings.REDIS_URL else "?") + "db=2"
    # All the load comes from 127.0.0.1: the public verification limits (per client address) are lifted.
    # No worker drains the queue here, so admission is lifted too (its limit is a promised wait, and
    # its intake pace a rate that no stamping backs): the bench measures the request path, not the refusal.
    env = dict(os.environ, GATEWAY_BENCH_ENDPOINTS="1", REDIS_URL=redis_url, STAMPING_CHANNEL_BACKLOG_LIMIT="10000000",
               STAMPING_MAX_WAIT_SECONDS="1e12", STAMPING_INTAKE_PACE="0",
               GATEWAY_PUBLIC_RATE_LIMITS="10000000/10000000,10000000/10000000",
               LOG_LEVEL="WARNING", DJANGO_SECRET_KEY=settings.SECRET_KEY,
               PAYMENT_SIMULATOR_SECRET=settings.PAYMENT_SIMULATOR_SECRET)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        print(f"gunicorn gthread {args.workers}x{args.threads} on 127.0.0.1:{port}; {args.clients} client threads in "
              "2 processes; "
              f"{args.seconds:.0f}s per scenario in {args.rounds} interleaved rounds")
        scenarios = ("db-read", "stamp-request", "order+credit", "verify-serial")
        for scenario in scenarios:
            measure(scenario, port, ctx, argparse.Namespace(seconds=1, clients=args.clients))  # warm up
        # Rounds interleave the scenarios, so a slow spell of the machine (a shared VM) hits them alike.
        window = argparse.Namespace(seconds=args.seconds / args.rounds, clients=args.clients)
        windows: dict[str, list] = {s: [] for s in scenarios}
        for _ in range(args.rounds):
            for scenario in scenarios:
                windows[scenario].append(measure(scenario, port, ctx, window))
        results = {}
        for scenario in scenarios:
            r = results[scenario] = summarise(windows[scenario])
            rounds = "/".join(f"{x:.0f}" for x in r["per_round"])
            print(f"{scenario:14s} {r['rps']:8.0f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                  f"errors {r['errors']}/{r['n']}  (rounds {rounds})")
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p99 = ratelimit_p99()
    print(f"rate-limit check (in-process, real Redis): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"cleanup: {cleanup()} queued bench jobs failed and their units released")
    ratio = results["stamp-request"]["rps"] / results["db-read"]["rps"]
    per_round = [s / d for s, d in zip(results["stamp-request"]["per_round"], results["db-read"]["per_round"],
                                        strict=True)]
    print("stamp-request / db-read by round: " + ", ".join(f"{x:.0%}" for x in per_round))
    print(f"stamp-request {results['stamp-request']['rps']:.0f} req/s = {ratio:.0%} of db-read "
          f"{results['db-read']['rps']:.0f} req/s; order+credit {results['order+credit']['rps']:.0f} pairs/s; "
          f"verify-serial {results['verify-serial']['rps']:.0f} req/s; rate-limit p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
