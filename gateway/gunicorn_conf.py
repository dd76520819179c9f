"""gunicorn configuration for the gateway's web processes: ``gunicorn -c python:gateway.gunicorn_conf ...``.

It adds the **probe listener**: ``/healthz`` and ``/readyz`` on a port of their own
(``GATEWAY_PROBE_BIND``, default ``127.0.0.1:8081``; empty or ``off`` disables it), answered by a thread
of the gunicorn master. Requests go to the workers; the master never serves one, so a surge that keeps
every worker busy (and a backlog in the listen queue) cannot delay a probe. ``/healthz`` there is 200
while the master has at least one live worker; ``/readyz`` adds PostgreSQL and Redis checks with their
own short deadlines (``gateway.probes``). The in-app ``/healthz`` and ``/readyz`` stay as they are.

It also runs the workers with **threads** (``gthread``, ``WEB_THREADS`` threads a process, 4 by
default): a channel may hold only a share of a process's threads (``gateway.bulkhead``), so the other
threads stay free for the other channels during one channel's surge. Each worker learns its real
thread count (a ``--threads`` on the command line included) in ``post_fork``, before Django loads.

Everything else (bind, workers, timeouts) is given on the command line as usual; anything given there
wins over this file.
"""

from __future__ import annotations

import contextlib
import os

PROBE_BIND_ENV = "GATEWAY_PROBE_BIND"
DEFAULT_PROBE_BIND = "127.0.0.1:8081"

_listener = None

worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))


def probe_address() -> tuple[str, int] | None:
    value = os.environ.get(PROBE_BIND_ENV, DEFAULT_PROBE_BIND).strip()
    if value.lower() in ("", "off", "0", "none"):
        return None
    host, _, port = value.rpartition(":")
    return (host.strip("[]") or "0.0.0.0", int(port))  # noqa: S104 - only when the operator asks for it


def _note_threads(server) -> None:
    threaded = server.cfg.worker_class_str in ("gthread", "sync")  # sync with threads > 1 is gthread
    os.environ["WEB_THREADS"] = str(server.cfg.threads if threaded else 1)


def on_starting(server) -> None:
    """In the master, once: its workers count their metrics in a directory of this instance under
    ``METRICS_DIR`` (prometheus-client's multiprocess mode), emptied now (``kernel.metrics``). The
    thread count goes into the environment first: the settings are loaded here, once, and the workers
    inherit them (read later, the bulkhead would see ``WEB_THREADS = 1`` and never refuse anything)."""
    _note_threads(server)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")  # as gateway.wsgi
    from django.conf import settings

    from kernel.metrics import instance_directory

    directory = instance_directory(settings.METRICS_DIR, role="web")
    server.log.info("metrics of this instance in %s", directory)


def when_ready(server) -> None:
    """In the master, before the first worker is forked: start the probe listener."""
    global _listener
    _note_threads(server)  # before django.setup() below reads the settings the workers inherit
    address = probe_address()
    if address is None:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")  # as gateway.wsgi
    import django

    django.setup()  # the checks read the database and Redis settings; no connection is opened here
    from gateway.probes import ProbeListener

    try:
        _listener = ProbeListener(address, workers_alive=lambda: len(server.WORKERS)).start()
    except OSError as exc:  # e.g. the port is taken: serve anyway; the in-app probes still answer
        server.log.error("probe listener could not bind %s:%s: %s", *address, exc)
        return
    host, port = _listener.server_address[:2]
    server.log.info("probe listener on http://%s:%s (/healthz, /readyz)", host, port)


def post_fork(server, worker) -> None:
    """In each worker: tell the bulkhead how many threads this process has (settings read it when the
    app loads, after this), and drop the inherited copy of the probe socket (only the master answers)."""
    _note_threads(server)
    if _listener is not None:
        with contextlib.suppress(OSError):
            _listener.socket.close()


def on_exit(server) -> None:
    if _listener is not None:
        _listener.stop()
