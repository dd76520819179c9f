"""Liveness and readiness probes, answered on every host - and by the probe listener.

Two places answer them:

- in the app, ``/healthz`` and ``/readyz`` on any host (``gateway.urls_probes``). They share the web
  workers with the requests, so during a surge they wait in the same queue;
- the **probe listener** (``gateway.gunicorn_conf``): a small HTTP server in the gunicorn master, on its
  own port, which no request can queue in front of. Orchestrators should probe that one.

Both run the same checks, each with its own short deadline and its own fresh connection: a probe says
whether PostgreSQL and Redis answer *now*. (The app's persistent connections are not used: after a
restart a probe must not wait for a worker to notice that its connection died, and a hung server must
cost a probe at most :data:`CHECK_DEADLINE_SECONDS`, not the request's timeouts.)
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from django.conf import settings
from django.http import JsonResponse

from gateway.http.problems import PROBLEM_CONTENT_TYPE, problem_body
from gateway.middleware import _VALID_REQUEST_ID
from kernel.context import request_id_var

# Every check together must answer within this (orchestrators commonly time probes out at 1 s).
CHECK_DEADLINE_SECONDS = 0.8
# libpq and psycopg treat any connect_timeout below 2 as 2; the deadline above bounds the wait anyway.
PG_CONNECT_TIMEOUT_SECONDS = 2
REDIS_TIMEOUT_SECONDS = 0.5
NOT_READY_RETRY_AFTER = "2"


def healthz(request):
    """The process is up and serving. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _postgres_params() -> dict:
    """Where the app's connection goes, read in the calling thread (connections are per thread, and
    tests point the current one elsewhere)."""
    from django.db import connections

    db = connections["default"].settings_dict
    return {
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }


def _select_one(params: dict) -> None:
    """A fresh connection and ``SELECT 1``, with short timeouts on both."""
    import psycopg

    with psycopg.connect(
        **params,
        connect_timeout=PG_CONNECT_TIMEOUT_SECONDS,
        options=f"-c statement_timeout={int(CHECK_DEADLINE_SECONDS * 1000)}",
        autocommit=True,
        application_name="gateway-probe",
    ) as conn:
        conn.execute("SELECT 1")


def _check_postgres() -> None:
    _select_one(_postgres_params())


def _check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    finally:
        client.close()


CHECKS: dict[str, Callable[[], None]] = {"postgres": _check_postgres, "redis": _check_redis}

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    """In a forked child (a gunicorn worker forked by a master running the probe listener): the lock
    may have been held by a probe thread that does not exist here."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _executor() -> ThreadPoolExecutor:
    """One small pool per process (a forked gunicorn worker makes its own). A check stuck past its
    deadline keeps its thread until its own timeout ends it; the pool has room for a few."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
            _pool_pid = os.getpid()
        return _pool


def run_checks(deadline: float = CHECK_DEADLINE_SECONDS) -> dict[str, dict]:
    """Run every check at once; each gets until ``deadline`` seconds from now. Never raises."""
    started = time.perf_counter()
    checks = {"postgres": partial(_select_one, _postgres_params()), "redis": _check_redis}
    futures = {name: _executor().submit(_timed, check) for name, check in checks.items()}
    results: dict[str, dict] = {}
    for name, future in futures.items():
        remaining = max(0.0, deadline - (time.perf_counter() - started))
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            results[name] = {"ok": False, "error": "timeout"}
    return results


def _timed(check: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure, it never raises
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def readiness(*, request=None, extra_failures: dict[str, dict] | None = None) -> tuple[int, dict, dict[str, str]]:
    """``(status, body, headers)`` of a readiness answer: 200 when every check passed, else 503 not_ready."""
    results = run_checks()
    results.update(extra_failures or {})
    failed = sorted(name for name, result in results.items() if not result["ok"])
    if not failed:
        return 200, {"status": "ready", "checks": results}, {}
    body = problem_body(
        request=request,
        status=503,
        code="not_ready",
        title="Not ready",
        detail=f"Unreachable: {', '.join(failed)}. This instance should not receive traffic until they are back.",
        checks=results,
    )
    return 503, body, {"Retry-After": NOT_READY_RETRY_AFTER, "Cache-Control": "no-store"}


def readyz(request):
    """Ready to take traffic: PostgreSQL and Redis both answer."""
    status, body, headers = readiness(request=request)
    content_type = PROBLEM_CONTENT_TYPE if status != 200 else "application/json"
    return JsonResponse(body, status=status, content_type=content_type, headers=headers)


# --------------------------------------------------------------------------- the probe listener


class ProbeListener(ThreadingHTTPServer):
    """``/healthz`` and ``/readyz`` on their own port, served by threads of the process that starts it
    (the gunicorn master: see ``gateway.gunicorn_conf``), so a surge that fills every web worker cannot
    make a probe wait. ``workers_alive()`` says how many web workers the master has: with none, the
    instance is neither live nor ready.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], *, workers_alive: Callable[[], int]):
        super().__init__(address, _ProbeHandler)
        self.workers_alive = workers_alive
        self.thread: threading.Thread | None = None

    def start(self) -> ProbeListener:
        self.thread = threading.Thread(target=self.serve_forever, name="probe-listener", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ProbeHandler(BaseHTTPRequestHandler):
    server: ProbeListener
    timeout = 2  # a client that sends nothing does not keep a thread
    protocol_version = "HTTP/1.1"
    server_version = "gateway-probe"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = self.path.split("?", 1)[0]
        incoming = self.headers.get("X-Request-Id", "")
        request_id = self.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(12)}"
        workers = self.server.workers_alive()
        no_workers = {"workers": {"ok": False, "error": "no web worker is running"}} if workers < 1 else {}
        if path == "/healthz":
            if no_workers:
                self._send(503, _problem(503, "not_live", "Not live", "No web worker is running.", request_id), {})
            else:
                self._send(200, {"status": "ok", "workers": workers}, {})
        elif path == "/readyz":
            token = request_id_var.set(request_id)
            try:
                status, body, headers = readiness(extra_failures=no_workers)
            finally:
                request_id_var.reset(token)
            if status == 200:
                body["checks"]["workers"] = {"ok": True, "count": workers}
            self._send(status, body, headers)
        else:
            self._send(
                404, _problem(404, "not_found", "Not found", "This port serves /healthz and /readyz.", request_id), {}
            )

    do_HEAD = do_GET  # noqa: N815

    def _send(self, status: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else PROBLEM_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Request-Id", self.request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # probes every few seconds would drown the access log


def _problem(status: int, code: str, title: str, detail: str, request_id: str) -> dict:
    body = problem_body(request=None, status=status, code=code, title=title, detail=detail)
    body["request_id"] = request_id
    return body
