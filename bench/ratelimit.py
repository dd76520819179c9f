"""Rate-limit check latency and throughput against the real (embedded) Redis.

Run from the repository root (uses the embedded Redis unless REDIS_URL is set):

    .venv/bin/python bench/ratelimit.py [--checks 20000] [--keys 200] [--threads 1]

Each check is one ``gateway.ratelimit.check_rate_limit`` call: one EVALSHA that reads and charges a
key bucket and a channel bucket. Limits are set high so every check is allowed (the common path;
a refusal does strictly less work). Keys rotate over ``--keys`` API key ids of one channel. Latency
is measured per call in this process (so it includes redis-py and the socket round trip); with
``--threads`` > 1 several threads share the module's connection pool. Nothing touches PostgreSQL:
the channel is an in-memory stand-in with the fields the limiter reads. The buckets go to their
own namespace and expire by themselves within seconds.

The last lines read ``p50 <ms> ms, p99 <ms> ms, max <ms> ms`` and ``checks/s: N``; the target is a
p99 under 1 ms for one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000, help="checks per thread")
    parser.add_argument("--keys", type=int, default=200, help="distinct API keys")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import django

    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()  # settings start nothing
    django.setup()
    from django.conf import settings

    from gateway import ratelimit

    settings.RATE_LIMIT_NAMESPACE = f"bench-{uuid.uuid4().hex[:8]}"
    channel = SimpleNamespace(
        pk=1, rate_limit_per_key=1_000_000, rate_limit_per_channel=1_000_000, rate_limit_burst=1_000_000
    )
    for key in range(args.keys):  # warm up: pool connections, script cache
        ratelimit.check_rate_limit(channel=channel, api_key_id=key)

    latencies: list[list[float]] = [[] for _ in range(args.threads)]
    sources: set[str] = set()

    def run(slot: int) -> None:
        out = latencies[slot]
        check = ratelimit.check_rate_limit
        clock = time.perf_counter
        for n in range(args.checks):
            started = clock()
            decision = check(channel=channel, api_key_id=(n * 7 + slot) % args.keys)
            out.append(clock() - started)
            if not decision.allowed:
                raise SystemExit("a check was refused: the bench limits are too low")
        sources.add(decision.source)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(args.threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    samples = sorted(ms * 1000 for per_thread in latencies for ms in per_thread)
    quantiles = statistics.quantiles(samples, n=100)
    print(f"redis: {settings.REDIS_URL}  answered by: {', '.join(sorted(sources))}")
    print(f"checks: {len(samples)} over {args.keys} keys, {args.threads} thread(s), {elapsed:.2f} s")
    print(f"p50 {quantiles[49]:.3f} ms, p99 {quantiles[98]:.3f} ms, max {samples[-1]:.3f} ms")
    print(f"checks/s: {len(samples) / elapsed:,.0f}")


if __name__ == "__main__":
    main()
