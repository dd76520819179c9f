"""Instructions the web process spends on one stamp request, counted by valgrind: a figure that does not
move with the machine's load, where requests/s and CPU seconds on a shared machine move by half.

Run from the repository root (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set; valgrind
from Debian's package):

    .venv/bin/python bench/request_cost.py [--few 20] [--many 120] [--no-key]

It runs this file twice under ``valgrind --tool=callgrind``: each run sets Django up on the API bench's
database (``bench/api.py``'s channel, customers and key), sends 20 warm-up requests, then ``--few`` or
``--many`` stamp requests (``POST /api/v1/stamps``, a 1-page text PDF, each with a new
``Idempotency-Key`` unless ``--no-key``) through Django's test client, in the same process. The
difference between the two runs' instruction counts, divided by the difference in requests, is what one
request costs the web process (the test client's own share included, the same on both sides of a
comparison); set-up and warm-up cancel out. PostgreSQL's and Redis' work is not counted. Admission
limits are lifted for the run; the jobs it queues are failed after each run, their units released, by a
process valgrind does not count. About two minutes a run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
WARM_UP = 20


def _django() -> None:
    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()
    from bench.common import use_bench_database

    use_bench_database("api")
    import django

    django.setup()


def requests_in_process(count: int, with_key: bool) -> None:
    """The measured run (under valgrind): ``WARM_UP`` + ``count`` stamp requests. The jobs they queue
    are failed afterwards by another process (``--cleanup``): done here, that work would grow with
    ``count`` and be counted as the requests' own."""
    _django()
    from django.conf import settings
    from django.test import Client

    from bench import api
    from tests.fixtures.pdfs.factory import text_pdf

    settings.STAMPING_CHANNEL_BACKLOG_LIMIT = settings.STAMPING_MAX_WAIT_SECONDS = 10**9
    settings.STAMPING_MIN_BACKLOG = 10**9  # (the intake pace applies from this backlog on)
    context = api.setup()
    client = Client(HTTP_HOST=api.HOST, HTTP_AUTHORIZATION=f"Bearer {context['key']}")
    placement = {"page": 1, "llx": 40, "lly": 40, "urx": 140, "ury": 140}
    bodies = [api.multipart({"customer": customer, **placement}, text_pdf()) for customer in context["customers"]]
    for number in range(WARM_UP + count):
        body, content_type = bodies[number % len(bodies)]
        headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex} if with_key else {}
        response = client.generic("POST", "/api/v1/stamps", body, content_type=content_type, **headers)
        if response.status_code != 202:
            raise SystemExit(f"request {number}: {response.status_code} {response.content[:300]!r}")


def cleanup() -> None:
    _django()
    from bench import api

    api.cleanup()


def instructions(count: int, with_key: bool) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--run", str(count), *([] if with_key else ["--no-key"]),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    subprocess.run([sys.executable, __file__, "--cleanup"], cwd=ROOT, check=True, capture_output=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the run of {count} requests failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--many", type=int, default=120)
    parser.add_argument("--no-key", action="store_true", help="send no Idempotency-Key")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # (the measured run, under valgrind)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)  # (after each run)
    args = parser.parse_args()
    if args.cleanup:
        cleanup()
        return
    if args.run is not None:
        requests_in_process(args.run, with_key=not args.no_key)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.many <= args.few:
        raise SystemExit("--many must be larger than --few")
    few = instructions(args.few, with_key=not args.no_key)
    many = instructions(args.many, with_key=not args.no_key)
    per_request = (many - few) / (args.many - args.few)
    kind = "without" if args.no_key else "with"
    print(f"{args.few} requests: {few:,} instructions; {args.many} requests: {many:,}")
    print(f"stamp request ({kind} Idempotency-Key): {per_request / 1e6:.2f} million instructions in the web process")


if __name__ == "__main__":
    main()
