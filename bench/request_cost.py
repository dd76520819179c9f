"""Instructions the web process spends on one stamp request, counted by valgrind: a figure that does not
move with the machine's load, where requests/s and CPU seconds on a shared machine move by half.

Run from the repository root (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set; valgrind
from Debian's package):

    .venv/bin/python bench/request_cost.py [--requests 100] [--no-key]

It runs this file under ``valgrind --tool=callgrind``: Django set up on the API bench's database
(``bench/api.py``'s channel, customers and key), 20 warm-up requests, then ``--requests`` stamp
requests (``POST /api/v1/stamps``, a 1-page text PDF, each with a new ``Idempotency-Key`` unless
``--no-key``) through Django's test client, in the same process. The counters are zeroed right before
those requests and dumped right after them (``callgrind_control``), so set-up, warm-up and the run's
end are not counted; what is, divided by the requests, is what one request costs the web process, the
test client's own share included (the same on both sides of a comparison). PostgreSQL's and Redis' work
is not counted. Admission limits are lifted for the run; the jobs it queues are failed afterwards, their
units released, by a process valgrind does not count. About two minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
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


def _callgrind(command: str, *args: str) -> None:
    """Tell the valgrind running this process to zero (``-z``) or dump (``-d``) its counters."""
    subprocess.run(["callgrind_control", command, *args, str(os.getpid())], check=True, capture_output=True)


def requests_in_process(count: int, with_key: bool) -> None:
    """The measured run (under valgrind): ``WARM_UP`` requests, then ``count`` counted ones."""
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
    keys = [uuid.uuid4().hex if with_key else None for _ in range(WARM_UP + count)]
    for number in range(WARM_UP + count):
        if number == WARM_UP:
            _callgrind("-z")
        body, content_type = bodies[number % len(bodies)]
        headers = {"HTTP_IDEMPOTENCY_KEY": keys[number]} if with_key else {}
        response = client.generic("POST", "/api/v1/stamps", body, content_type=content_type, **headers)
        if response.status_code != 202:
            raise SystemExit(f"request {number}: {response.status_code} {response.content[:300]!r}")
    _callgrind("-d", DUMP)


def cleanup() -> None:
    _django()
    from bench import api

    api.cleanup()


DUMP = "requests"


def instructions(count: int, with_key: bool) -> int:
    """The instructions of ``count`` requests, from the dump the measured run made of them."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--run", str(count), *([] if with_key else ["--no-key"]),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        subprocess.run([sys.executable, __file__, "--cleanup"], cwd=ROOT, check=True, capture_output=True)
        if done.returncode != 0:
            raise SystemExit(f"the measured run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        for dump in Path(directory).glob("callgrind.out*"):
            text = dump.read_text(errors="replace")
            if f"Trigger: dump {DUMP}" in text:
                return int(re.search(r"^summary: (\d+)", text, re.MULTILINE).group(1))
    raise SystemExit("valgrind made no dump of the requests (is callgrind_control installed?)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--no-key", action="store_true", help="send no Idempotency-Key")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # (the measured run, under valgrind)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)  # (after the run)
    args = parser.parse_args()
    if args.cleanup:
        cleanup()
        return
    if args.run is not None:
        requests_in_process(args.run, with_key=not args.no_key)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.requests < 1:
        raise SystemExit("--requests must be at least 1")
    total = instructions(args.requests, with_key=not args.no_key)
    kind = "without" if args.no_key else "with"
    print(f"{args.requests} requests: {total:,} instructions")
    per_request = total / args.requests / 1e6
    print(f"stamp request ({kind} Idempotency-Key): {per_request:.2f} million instructions in the web process")


if __name__ == "__main__":
    main()
