"""Ledger throughput: hold+commit pairs per second and wallet credits per second.

Run from the repository root (in a database of its own, ``gateway_bench`` in the embedded
PostgreSQL or ``<name>_bench`` next to DATABASE_URL's; see ``bench.common``):

    .venv/bin/python bench/ledger.py [--seconds 10] [--procs 2] [--threads 8] [--customers 2000]

2 x 8 connections is the best of a sweep on 2 cores (4..24 threads per process): more connections
only add contention.

Many concurrent customers of ONE channel, through the service layer (``billing.quota``): each
worker thread picks a random customer and does hold_quota then commit_hold (two transactions, as
in the real stamping flow). Credits are order settlements (reserve already made, then the paid
order's reservation is posted), the webhook's ledger work. The last line reads
``hold+commit pairs/s: N, credits/s: M``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")


def _setup_django():
    import django

    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()  # settings start nothing
    django.setup()


def prepare(customers: int) -> int:
    """A bench channel with funded customers; returns the channel id."""
    from bench.common import setup_migrated

    setup_migrated("ledger")
    from billing import quota
    from tenants.models import Channel
    from tenants.services import ensure_issuer, provision_channel

    code = "benchledger"
    channel = Channel.objects.filter(code=code).first()
    if channel is None:
        ensure_issuer()
        channel = provision_channel(code=code, name="Ledger bench", domain="benchledger.localhost").channel
    channel.create_schema(check_if_exists=True, verbosity=0)  # (older runs made the row without one)
    run = uuid.uuid4().hex[:8]
    quota.allocate_stock(channel_id=channel.id, units=customers * 1000 + 1_000_000, reference=f"bench-{run}")
    for customer in range(1, customers + 1):
        ids = quota.reserve_stock(channel_id=channel.id, customer_id=customer, order_ref=f"bench-{run}-{customer}",
                                  quantity=1000, timeout=quota.DEFAULT_HOLD_TIMEOUT)
        quota.settle_reservation(reservation_ids=ids)
    return channel.id


def worker(mode: str, channel_id: int, customers: int, threads: int, seconds: float, out: mp.Queue) -> None:
    _setup_django()
    from django.db import connection

    from billing import quota

    counts = [0] * threads
    stop_at = time.monotonic() + seconds
    run = uuid.uuid4().hex[:10]

    def loop(index: int) -> None:
        rng = random.Random(index)
        n = 0
        try:
            while time.monotonic() < stop_at:
                customer = rng.randint(1, customers)
                if mode == "hold":
                    hold_id = f"bh:{run}:{index}:{n}"
                    quota.hold_quota(channel_id=channel_id, customer_id=customer, hold_id=hold_id)
                    quota.commit_hold(hold_id=hold_id)
                else:
                    ids = quota.reserve_stock(channel_id=channel_id, customer_id=customer,
                                              order_ref=f"bc:{run}:{index}:{n}", quantity=1,
                                              timeout=quota.DEFAULT_HOLD_TIMEOUT)
                    quota.settle_reservation(reservation_ids=ids)
                n += 1
        finally:
            counts[index] = n
            connection.close()

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(sum(counts))


def measure(mode: str, channel_id: int, args) -> float:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(mode, channel_id, args.customers, args.threads, args.seconds, out))
             for _ in range(args.procs)]
    started = time.monotonic()
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    channel_id = prepare(args.customers)
    from django.db import connections

    connections.close_all()
    print(f"{args.procs} processes x {args.threads} threads, {args.customers} customers, one channel, "
          f"{args.seconds:.0f}s per measurement")
    pairs = measure("hold", channel_id, args)
    print(f"hold_quota + commit_hold: {pairs:,.0f} pairs/s")
    credits = measure("credit", channel_id, args)
    print(f"reserve + settle (credit): {credits:,.0f} credits/s")
    print(f"hold+commit pairs/s: {pairs:.0f}, credits/s: {credits:.0f}")


if __name__ == "__main__":
    main()
