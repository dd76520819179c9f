"""The gateway's counters and histograms (Prometheus), shared by the web and worker processes.

Events are counted where they happen (a request in the edge, a stamp in the drainer, a webhook
delivery in the outbox) with these objects; ``/metrics`` (``faces.metrics``) reads them back, and adds
the figures that are state rather than events (queue depth, holds, stock, outbox depth) at scrape time.

**Many processes.** gunicorn and Celery run several processes; each writes its counts to memory-mapped
files in a directory (prometheus-client's multiprocess mode), and ``/metrics`` adds up every file of
every role. :func:`use_directory` chooses a process's directory: the gunicorn master calls it before
the first worker is forked (``gateway.gunicorn_conf``), a Celery worker before its pool starts
(``gateway.celery``); a process that never calls it (tests, ``manage.py shell``) counts in its own memory.

**Bounded labels.** ``route`` is the URL pattern's name (never the raw path), ``channel`` a channel's
schema name (at most the number of channels), ``status`` the HTTP status, ``code`` an error code of the
catalogue; nothing a client chooses freely becomes a label.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import Counter, Histogram, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NO_CHANNEL = "-"  # the label of whatever is not a channel's (the issuer's host, an unknown host)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)

HTTP_REQUESTS = Counter(
    "gateway_http_requests", "Requests answered, by URL pattern, channel and status.", ["route", "channel", "status"]
)
HTTP_LATENCY = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer a request, by URL pattern, channel and status class (2xx, 4xx, ...).",
    ["route", "channel", "status_class"],
    buckets=LATENCY_BUCKETS,
)
REFUSALS = Counter(
    "gateway_refusals", "Refusals (problem+json answers), by error code and channel.", ["code", "channel"]
)
WEB_LOWERED = Counter(
    "gateway_web_lowered_requests",
    "Requests served on a web thread of lower CPU priority (their channel over its share), by channel.",
    ["channel"],
)
STAMPS = Counter(
    "gateway_stamps", "Stamping jobs finished, by channel and outcome (stamped, failed).", ["channel", "outcome"]
)
STAMP_FAILURES = Counter(
    "gateway_stamping_failures", "Stamping jobs failed for good, by channel and error code.", ["channel", "code"]
)
STAMP_WAIT = Histogram(
    "gateway_stamp_wait_seconds",
    "Actual time from a stamp's acceptance to its end (stamped or failed), by channel.",
    ["channel"],
    buckets=WAIT_BUCKETS,
)
STAMP_ETA_PROMISED = Histogram(
    "gateway_stamp_eta_promised_seconds",
    "The wait promised in a stamp's 202 answer (queue.eta_seconds), by channel.",
    ["channel"],
    buckets=WAIT_BUCKETS,
)
WEBHOOK_ATTEMPTS = Counter(
    "gateway_webhook_attempts",
    "Webhook delivery attempts, by channel and outcome (succeeded, retry, failed).",
    ["channel", "outcome"],
)


def channel_label(schema_name: str | None) -> str:
    return schema_name if schema_name and schema_name != "public" else NO_CHANNEL


def use_directory(path: str | os.PathLike, *, clean: bool) -> Path:
    """Count this process (and the processes it forks from now on) in files under ``path``; with
    ``clean`` remove what an earlier run left there first (its processes are gone, and their counts
    would otherwise be added to this run's forever)."""
    directory = Path(path)
    if clean and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # series made from now on write to the directory
    return directory


def multiprocess() -> bool:
    """Whether this process counts in files (see :func:`use_directory`)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def prune_dead(root: str | os.PathLike, *, role: str, host: str) -> None:
    """Remove ``root``'s directories of ``role`` instances on ``host`` whose process is gone
    (``<role>-<host>-<pid>``): their counts end with them, as a restarted server's would."""
    base = Path(root)
    if not base.exists():
        return
    for directory in base.glob(f"{role}-{host}-*"):
        pid = directory.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue


def instance_directory(root: str | os.PathLike, *, role: str) -> Path:
    """This instance's directory under ``root`` (``<role>-<host>-<pid>``), dead siblings pruned, the
    directory itself emptied, and this process counting in it."""
    import socket

    host = socket.gethostname().replace("-", "_")
    prune_dead(root, role=role, host=host)
    return use_directory(Path(root) / f"{role}-{host}-{os.getpid()}", clean=True)


def follow_environment() -> None:
    """In a forked child whose parent imported this module before choosing a directory: pick up the
    directory from the environment (no-op when there is none)."""
    if os.environ.get(MULTIPROC_ENV):
        values.ValueClass = values.get_value_class()
