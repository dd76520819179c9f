"""Instructions a stamping worker spends on one stamp, and how many of them are the engine's, counted by
valgrind: figures that do not move with the machine's load, where the CPU seconds of
``bench/pipeline.py`` move by a third from one run to the next on a shared machine.

Run from the repository root (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set; valgrind
from Debian's package):

    .venv/bin/python bench/stamp_cost.py [--jobs 60]

It queues ``WARM_UP + --jobs`` stamp jobs on ``bench/pipeline.py``'s channel (its database, its Redis
database), alternating the ~800 KB scan and the 1-page text as that bench does, then runs this file
under ``valgrind --tool=callgrind``: Django set up as a worker has it, ``WARM_UP`` jobs drained (the
statements prepared, the engine warm), then the counters zeroed, ``--jobs`` jobs drained exactly as a
drainer task does (``stamping.services.drain``, each job claimed, stamped, recorded, and the other
lanes checked after it), and the counters dumped. Then, in the same process, the engine alone on the
same two documents (``bench/pipeline.py``'s ``stamp_alone``, which it times),
``--jobs`` times, between a zero and a dump of its own. Printed: instructions per stamp in the worker
and in the engine alone, and their ratio. The worker's stamp takes the intake's inspection with the
job (``issuer.facts``) and does not inspect the document again, so the worker can come out below
the engine alone, whose figure includes an inspection; what the worker adds around its stamp (the
claim, the recording, the lanes, Django, psycopg, Redis) is inside its own figure.
PostgreSQL's and Redis' own work is not counted. The jobs are removed afterwards as
``bench/pipeline.py`` removes its own. About a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
WARM_UP = 6
DUMPS = ("worker", "engine")


def _setup(docs: int):
    """The pipeline bench's channel and customer, funded for ``docs`` stamps (Django set up)."""
    from bench import pipeline

    os.environ["REDIS_URL"] = pipeline.bench_redis_url()
    return pipeline.setup(docs=docs, budget=1)


def _callgrind(command: str, *args: str) -> None:
    """Tell the valgrind running this process to zero (``-z``) or dump (``-d``) its counters."""
    subprocess.run(["callgrind_control", command, *args, str(os.getpid())], check=True, capture_output=True)


def queue(jobs: int) -> None:
    """Before the measured run, outside valgrind: the jobs, through the real intake, lane not woken."""
    from bench import pipeline

    channel, customer_id = _setup(WARM_UP + jobs)
    pipeline.cleanup()
    pipeline.prequeue(channel, customer_id, WARM_UP + jobs, pipeline.documents())


def measured(jobs: int) -> None:
    """The measured run (under valgrind): drain ``WARM_UP`` jobs, then ``jobs`` counted; then the engine."""
    from bench import pipeline
    from bench.common import use_bench_database

    os.environ["REDIS_URL"] = pipeline.bench_redis_url()
    use_bench_database("pipeline")  # (migrated and funded by ``queue``, before)
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from issuer.engine import get_engine
    from stamping import lanes, services
    from tenants.models import Channel

    channel = Channel.objects.get(code=pipeline.CHANNEL)

    def drain(count: int) -> int:
        done = [0]

        def should_yield() -> bool:
            lanes.others_waiting(channel.schema_name)  # (what a drainer asks after every job)
            done[0] += 1
            return done[0] >= count

        with schema_context(channel.schema_name):
            ran, _more = services.drain(channel=channel, time_slice=3600, should_yield=should_yield)
        return ran

    if drain(WARM_UP) != WARM_UP:
        raise SystemExit("the warm-up jobs were not all there")
    _callgrind("-z")
    ran = drain(jobs)
    _callgrind("-d", DUMPS[0])
    if ran != jobs:
        raise SystemExit(f"drained {ran} jobs, not {jobs}")

    engine = get_engine()
    pdfs = pipeline.documents()
    for data in pdfs:
        pipeline.stamp_alone(engine, data)  # warm up
    _callgrind("-z")
    for number in range(jobs):
        pipeline.stamp_alone(engine, pdfs[number % len(pdfs)])
    _callgrind("-d", DUMPS[1])


def cleanup() -> None:
    from bench import pipeline

    _setup(1)
    pipeline.cleanup()


def instructions(jobs: int) -> dict[str, int]:
    """The instructions of each dump the measured run made."""
    subprocess.run([sys.executable, __file__, "--queue", str(jobs)], cwd=ROOT, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, "--run", str(jobs),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        subprocess.run([sys.executable, __file__, "--cleanup"], cwd=ROOT, check=True, capture_output=True)
        if done.returncode != 0:
            raise SystemExit(f"the measured run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        found = {}
        for dump in Path(directory).glob("callgrind.out*"):
            text = dump.read_text(errors="replace")
            for name in DUMPS:
                if f"Trigger: dump {name}" in text:
                    found[name] = int(re.search(r"^summary: (\d+)", text, re.MULTILINE).group(1))
    if set(found) != set(DUMPS):
        raise SystemExit("valgrind did not dump both counts (is callgrind_control installed?)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # (the measured run, under valgrind)
    parser.add_argument("--queue", type=int, help=argparse.SUPPRESS)  # (before it)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)  # (after it)
    args = parser.parse_args()
    if args.cleanup:
        cleanup()
        return
    if args.queue is not None:
        queue(args.queue)
        return
    if args.run is not None:
        measured(args.run)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not 2 <= args.jobs <= 1000 or args.jobs % 2:
        raise SystemExit("--jobs must be an even number from 2 to 1000 (the two documents alternate)")
    found = instructions(args.jobs)
    worker, engine = (found[name] / args.jobs / 1e6 for name in DUMPS)
    print(f"{args.jobs} stamps: {found['worker']:,} instructions in the worker; the engine alone {found['engine']:,}")
    print(
        f"per stamp: worker {worker:.2f} million instructions, the engine alone {engine:.2f} (inspection and"
        f" stamp), worker / engine {worker / engine:.2f}"
    )


if __name__ == "__main__":
    main()
