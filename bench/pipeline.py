"""Stamping pipeline end to end against the engine alone, in one run.

Run from the repository root (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set):

    .venv/bin/python bench/pipeline.py [--docs 400] [--workers 1] [--concurrency 2] [--timeout 300]
                                       [--engine-seconds 6] [--profile DIR]

1. Pre-queues ``--docs`` stamp jobs on a bench-only channel (``benchpipe``) through the real intake
   (``request_stamp``: document check, hold, job and document rows), alternating the ~800 KB scan and
   a 1-page text document (``tests/fixtures/pdfs/factory``, as ``bench/stamping.py`` builds them).
2. Starts ``--workers`` real Celery worker processes (``celery -A gateway worker -Q stamping``, each
   with ``--concurrency`` children; the default, 1 x 2, is production on this machine) and wakes the
   channel's lane once, as the request path would.
3. Waits (at most ``--timeout`` seconds) until every job is finished and prints the pipeline's rate
   from the jobs' own timestamps: first ``started_at`` to last ``finished_at``.
4. Verifies its own result: every job ``stamped``, exactly one used serial per job, no serial twice,
   and ``billing.reconciliation.reconcile`` clean. Any failure exits non-zero.
5. Measures the engine alone in this process on the same two documents, alternating, as
   ``bench/stamping.py`` does (``inspect_document`` + ``StampEngine.stamp``): stamps/s on one core.

The last line reads ``pipeline P stamps/s on C cores, engine E stamps/s/core, ratio R`` with
R = P / (E x C), C the cores this process may run on. With ``--profile DIR`` each worker child writes a
cProfile of its run to ``DIR`` (``pstats`` can read them), timed in CPU seconds (``time.process_time``),
as "CPU per stamp" is: a wall-clock profile is mostly the worker waiting for PostgreSQL.

It cleans up after itself (and after an interrupted run, first): the workers are stopped, the bench
channel's jobs and their uploaded documents are deleted (a job left unfinished is failed first, so
its unit goes back), its broker queue (a Redis database of its own, number 3) is flushed, and the
tables it deleted from are vacuumed (left to autovacuum, that work fell in the next run's window
and was counted as its PostgreSQL CPU). The issuer's stamped documents go with the uploads they
were stamped on. The channel, its ledger and the issuer's registry of the serials it used stay, as
every stamp's record does, so the books still reconcile.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

CHANNEL = "benchpipe"
HOST = "benchpipe.localhost"
BOX = (420.0, 60.0, 520.0, 160.0)
BENCH_REDIS_DB = 3
MAX_DOCS = 5000


def bench_redis_url() -> str:
    """The Redis this run uses (the embedded one unless REDIS_URL is set), in a database of its own."""
    url = os.environ.get("REDIS_URL")
    if not url:
        from gateway.embedded import ensure_redis

        url = ensure_redis()
    if "db=" in url or (not url.startswith("unix://") and url.rstrip("/").rsplit("/", 1)[-1].isdigit()):
        return url
    return url + ("&" if "?" in url else "?") + f"db={BENCH_REDIS_DB}"


def documents() -> list[bytes]:
    from tests.fixtures.pdfs import factory

    return [factory.scanned_pdf(), factory.text_pdf()]


def setup(*, docs: int, budget: int):
    """The bench channel with one customer funded for ``docs`` stamps; returns (channel, customer id)."""
    from bench.common import setup_migrated

    setup_migrated("pipeline")
    from django_tenants.utils import schema_context

    from billing import quota
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tenants.services import ensure_issuer, provision_channel

    ensure_issuer(domains=["localhost"])
    channel = (
        Channel.objects.filter(code=CHANNEL).first()
        or provision_channel(code=CHANNEL, name="Pipeline bench", domain=HOST).channel
    )
    Channel.objects.filter(pk=channel.pk).update(stamping_concurrency=budget)
    channel.refresh_from_db()
    run = uuid.uuid4().hex[:10]
    quota.allocate_stock(channel_id=channel.pk, units=docs, reference=f"benchpipe-{run}")
    with schema_context(CHANNEL):
        customer, _ = Customer.objects.get_or_create(external_ref="benchpipe", defaults={"name": "Pipeline bench"})
    ids = quota.reserve_stock(
        channel_id=channel.pk,
        customer_id=customer.pk,
        order_ref=f"benchpipe-{run}",
        quantity=docs,
        timeout=quota.DEFAULT_HOLD_TIMEOUT,
    )
    quota.settle_reservation(reservation_ids=ids)
    return channel, customer.pk


def prequeue(channel, customer_id: int, docs: int, pdfs: list[bytes]) -> list[str]:
    """``docs`` jobs through the real intake, without waking the lane (nobody drains yet)."""
    from django_tenants.utils import schema_context

    from stamping import services

    queued, services.queued = services.queued, lambda **_: None
    try:
        with schema_context(CHANNEL):
            return [
                services.request_stamp(
                    channel=channel, customer_id=customer_id,
                    request=services.StampRequest(data=pdfs[i % len(pdfs)], page=1, box=BOX, file_name=f"b{i}.pdf",
                                                  reason="Surat Pernyataan", location="Jakarta"),
                ).pk
                for i in range(docs)
            ]  # fmt: skip
    finally:
        services.queued = queued


def start_workers(count: int, concurrency: int, logs: Path, profile_dir: str | None) -> list[subprocess.Popen]:
    env = dict(os.environ, LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    if profile_dir:
        env["GATEWAY_BENCH_PROFILE_DIR"] = profile_dir
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "gateway",
        "worker",
        "-Q",
        "stamping",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if profile_dir:
        argv = [sys.executable, str(Path(__file__).resolve()), "--_profiled-worker", *argv[3:]]
    procs = []
    for i in range(count):
        log = (logs / f"worker-{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                [*argv, "-n", f"benchpipe{i}-{uuid.uuid4().hex[:6]}@%h"],
                cwd=ROOT,
                env=env,  # noqa: S603
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_finished(job_ids: list[str], procs: list[subprocess.Popen], timeout: float) -> tuple[int, int]:
    """Poll until the jobs are finished; returns (jobs left open, polls made).

    Each poll asks whether the bench channel has an open job at all (its status index, one row at
    most): the bench's jobs are the channel's only ones, the cleanup before the run ended any
    other. A count over the ids themselves (thousands of parameters, four times a second) cost this
    process 8 % of a core while the workers ran, CPU the pipeline then did not have."""
    from django_tenants.utils import schema_context

    from stamping.models import StampJob

    open_jobs = StampJob.objects.filter(status__in=["queued", "processing"])
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        polls += 1
        with schema_context(CHANNEL):
            busy = open_jobs.exists()
        if not busy or time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            if not busy:
                return 0, polls
            with schema_context(CHANNEL):
                return open_jobs.filter(pk__in=job_ids).count(), polls + 1
        time.sleep(0.25)


def pg_counters() -> dict[str, float]:
    """PostgreSQL's own counters: WAL written and flushed, transactions committed, rows written."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT w.wal_bytes, w.wal_records, w.wal_sync, w.wal_fpi, d.xact_commit, d.xact_rollback,"
            " d.tup_inserted + d.tup_updated + d.tup_deleted"
            " FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
        )
        names = ("wal_bytes", "wal_records", "wal_syncs", "wal_fpi", "commits", "rollbacks", "rows_written")
        return dict(zip(names, (float(v) for v in cursor.fetchone()), strict=True))


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_seconds(pid: int) -> float:
    """CPU used by a process, its reaped children and its live descendants."""
    try:
        fields = _stat(pid)
        total = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return 0.0  # gone meanwhile: its parent counts it from now on
    return total / os.sysconf("SC_CLK_TCK") + sum(tree_cpu_seconds(int(child)) for child in children)


def wait_ready(procs: list[subprocess.Popen], logs: Path, concurrency: int, timeout: float = 120.0) -> None:
    """Until every worker has logged that it is ready and each of its children that its stamping
    engine is (``gateway.celery``): start-up is not counted in the workers' CPU."""
    deadline = time.monotonic() + timeout
    for i, proc in enumerate(procs):
        log = logs / f"worker-{i}.log"
        while not _ready(log.read_text(errors="replace"), concurrency):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {i} did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.1)


def _ready(text: str, concurrency: int) -> bool:
    return " ready." in text and text.count("stamping engine ready") >= concurrency


def postgres_cpu_seconds() -> float | None:
    """CPU used by the PostgreSQL server so far (postmaster, its live children and its reaped ones),
    when it runs on this machine; None otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        postmaster = int(_stat(backend)[1])
    except (OSError, ValueError, IndexError):
        return None  # not on this machine
    return tree_cpu_seconds(postmaster)


def verify(channel, job_ids: list[str]) -> tuple[float, list[str]]:
    """The pipeline's rate and what is wrong with the run (nothing, one hopes)."""
    from django.db.models import Count, Max, Min
    from django_tenants.utils import schema_context

    from billing.reconciliation import reconcile
    from issuer.models import Serial
    from stamping.models import StampJob

    problems = []
    with schema_context(CHANNEL):
        jobs = StampJob.objects.filter(pk__in=job_ids)
        by_status = dict(jobs.values_list("status").annotate(n=Count("pk")))
        span = jobs.aggregate(first=Min("started_at"), last=Max("finished_at"))
        serials = dict(jobs.values_list("pk", "serial"))
    if by_status.get("stamped", 0) != len(job_ids):
        problems.append(f"jobs by status: {by_status} (all {len(job_ids)} should be stamped)")
    refs = [f"{CHANNEL}:{job_id}" for job_id in job_ids]
    used = Serial.objects.filter(channel=channel, job_ref__in=refs, status=Serial.Status.USED)
    per_ref = dict(used.values_list("job_ref").annotate(n=Count("pk")))
    if len(per_ref) != len(job_ids) or any(n != 1 for n in per_ref.values()):
        twice = sum(n != 1 for n in per_ref.values())
        problems.append(f"{len(per_ref)} jobs have a used serial, {twice} more than one")
    if sorted(used.values_list("serial", flat=True)) != sorted(s for s in serials.values() if s):
        problems.append("the jobs' serials are not the registry's used serials")
    report = reconcile(store=False)
    if not report["ok"]:
        problems.extend(f"reconcile: {c['name']}: {c['violations'][:3]}" for c in report["checks"] if not c["ok"])
    seconds = (span["last"] - span["first"]).total_seconds() if span["first"] and span["last"] else 0.0
    return (len(job_ids) / seconds if seconds > 0 else 0.0), problems


def cleanup() -> int:
    """Delete the bench channel's jobs and their documents (failing any left open, so their units go
    back), the issuer's stamped documents built on those uploads, and empty this run's Redis database.
    Returns how many jobs were left open."""
    from django_tenants.utils import schema_context

    from issuer.models import StampedDocument
    from stamping import admission, services
    from stamping.models import JobDocument, StampJob

    with schema_context(CHANNEL):
        left = list(StampJob.objects.filter(status__in=["queued", "processing"]))
        for job in left:
            services._fail(job, code="bench", detail="left unfinished by bench/pipeline.py")
        JobDocument.objects.all().delete()
        StampJob.objects.all().delete()
    StampedDocument.objects.filter(serial__channel__schema_name=CHANNEL).delete()
    admission.client().flushdb()  # this run's own database: its broker queue, lane tokens, counters
    vacuum()
    return len(left)


def vacuum() -> None:
    """Vacuum now what this cleanup deleted (the uploads' TOAST alone is ~80 MB of dead rows a run):
    left to autovacuum, it was done during the NEXT run's stamping and counted in that run's
    PostgreSQL CPU (1.6 s of it in one run, 4 ms a stamp). Whatever dead rows a run's own stamping
    leaves (each claim and each stamped job's update, the settled holds) stay autovacuum's, as they
    would in production."""
    from django.db import connection

    from issuer.models import StampedDocument
    from stamping.models import JobDocument, StampJob

    tables = [f"{connection.ops.quote_name(CHANNEL)}.{model._meta.db_table}" for model in (JobDocument, StampJob)]
    tables.append(f"public.{StampedDocument._meta.db_table}")
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {', '.join(tables)}")  # (autocommit: VACUUM runs outside a transaction)


def stamp_alone(engine, data: bytes) -> None:
    """One stamp by the engine alone, as ``bench/stamping.py`` measures it (``inspect_document`` +
    ``StampEngine.stamp``)."""
    from django.utils import timezone

    from issuer.pdf import inspect_document
    from issuer.serials import new_serial

    info = inspect_document(data, max_bytes=20 * 1024 * 1024)
    engine.stamp(
        data,
        info=info,
        page=1,
        box=BOX,
        serial=new_serial(),
        reason="Surat Pernyataan",
        location="Jakarta",
        signed_at=timezone.now(),
    )


def engine_rate(pdfs: list[bytes], seconds: float) -> float:
    """Stamps/s on one core of the engine alone (:func:`stamp_alone`) on the same documents, alternating."""
    from issuer.engine import get_engine

    engine = get_engine()
    for data in pdfs:
        stamp_alone(engine, data)  # warm up
    runs = 0
    started = time.perf_counter()
    while runs < 20_000 and (runs < 2 * len(pdfs) or time.perf_counter() - started < seconds):
        stamp_alone(engine, pdfs[runs % len(pdfs)])
        runs += 1
    return runs / (time.perf_counter() - started)


def profiled_worker(argv: list[str]) -> None:
    """A Celery worker whose every child profiles itself until it exits (``--profile``)."""
    import cProfile

    from celery.signals import worker_process_init, worker_process_shutdown

    profiles: dict[str, cProfile.Profile] = {}

    @worker_process_init.connect(weak=False)
    def _start(**_):
        profiles["p"] = cProfile.Profile(time.process_time)  # CPU: waits on PostgreSQL are not the worker's cost
        profiles["p"].enable()

    @worker_process_shutdown.connect(weak=False)
    def _stop(**_):
        if "p" in profiles:
            profiles["p"].disable()
            profiles["p"].dump_stats(Path(os.environ["GATEWAY_BENCH_PROFILE_DIR"]) / f"worker-{os.getpid()}.prof")

    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *argv[1:]]  # what follows "--_profiled-worker": "-A gateway worker ..."
    celery_main()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the jobs, seconds")
    parser.add_argument("--engine-seconds", type=float, default=6.0)
    parser.add_argument("--profile", metavar="DIR", help="cProfile each worker child into DIR")
    args = parser.parse_args()
    if not 1 <= args.docs <= MAX_DOCS:
        parser.error(f"--docs must be between 1 and {MAX_DOCS}")

    os.environ["REDIS_URL"] = bench_redis_url()  # before Django reads its settings; workers inherit it
    profile_dir = str(Path(args.profile).resolve()) if args.profile else None
    if profile_dir:
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
    budget = args.workers * args.concurrency
    channel, customer_id = setup(docs=args.docs, budget=budget)
    from django.db import connections

    from stamping import lanes

    if cleanup():
        print("(failed and removed the open jobs of an interrupted run)")
    pdfs = documents()
    problems: list[str] = []
    try:
        started = time.monotonic()
        job_ids = prequeue(channel, customer_id, args.docs, pdfs)
        print(
            f"{args.docs} jobs queued ({', '.join(f'{len(p) // 1024} KB' for p in pdfs)}, alternating) "
            f"in {time.monotonic() - started:.1f}s; {args.workers} worker(s) x concurrency {args.concurrency}"
        )
        before = pg_counters()
        pg_cpu_before = postgres_cpu_seconds()
        connections.close_all()
        with tempfile.TemporaryDirectory(prefix="benchpipe-") as logs:
            procs = start_workers(args.workers, args.concurrency, Path(logs), profile_dir)
            try:
                wait_ready(procs, Path(logs), args.concurrency)
                worker_cpu_before = sum(tree_cpu_seconds(p.pid) for p in procs)
                lanes.wake(schema_name=CHANNEL, budget=budget, queued=args.docs)
                left, polls = wait_finished(job_ids, procs, args.timeout)
                worker_cpu = sum(tree_cpu_seconds(p.pid) for p in procs) - worker_cpu_before
            finally:
                stop_workers(procs)
            time.sleep(0.5)  # (the workers' backends report their statistics as they exit)
            after = pg_counters()
            pg_cpu = postgres_cpu_seconds()
            if left:
                problems.append(f"{left} jobs unfinished after {args.timeout:.0f}s")
                for log in sorted(Path(logs).glob("*.log")):
                    lines = log.read_text(errors="replace").splitlines()[-30:]
                    print(f"--- {log.name} (last lines)\n" + "\n".join(lines))
        pipeline, found = verify(channel, job_ids)
        problems.extend(found)
    finally:
        cleanup()
    engine = engine_rate(pdfs, args.engine_seconds)
    cores = len(os.sched_getaffinity(0))
    per_stamp = {name: (after[name] - before[name]) / args.docs for name in after}
    per_stamp["commits"] -= (polls + 1) / args.docs  # the bench's own polls (autocommit reads)
    print(
        "PostgreSQL per stamp: {wal_bytes:,.0f} WAL bytes in {wal_records:.1f} records ({wal_fpi:.2f} full pages), "
        "{wal_syncs:.2f} WAL flushes, {commits:.2f} commits, {rollbacks:.2f} rollbacks, "
        "{rows_written:.1f} rows written".format(**per_stamp)
    )
    if pg_cpu is not None and pg_cpu_before is not None:
        pg_ms = (pg_cpu - pg_cpu_before) * 1000 / args.docs
        print(
            f"CPU per stamp: workers {worker_cpu * 1000 / args.docs:.2f} ms, PostgreSQL {pg_ms:.2f} ms "
            f"(the engine alone: {1000 / engine:.2f} ms)"
        )
    print(f"checks: {'all jobs stamped once, reconcile clean' if not problems else 'FAILED'}")
    for problem in problems:
        print(f"  - {problem}")
    if profile_dir:
        print(f"profiles in {profile_dir}")
    print(
        f"pipeline {pipeline:.1f} stamps/s on {cores} cores, engine {engine:.1f} stamps/s/core, "
        f"ratio {pipeline / (engine * cores):.2f}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_profiled-worker":
        profiled_worker(sys.argv[1:])
    else:
        sys.exit(main())
