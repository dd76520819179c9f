"""Verification of uploaded documents in its own small pool of processes, with a hard time limit.

Validating PDF signatures is CPU work that anyone may ask for (``POST /api/v1/verify`` needs no
key): unbounded, a few crafted uploads kept web processes busy for seconds each (64 signatures in
510 KB: 10 s of CPU). So verification:

* refuses, before validating anything, a document with more than ``VERIFY_MAX_SIGNATURES``
  signatures or ``VERIFY_MAX_REVISIONS`` revisions (``document_too_complex``, 422);
* runs in ``VERIFY_WORKERS`` worker processes per web process (started on first use with
  ``spawn``, so no thread, lock or database connection of the web process is inherited), which run
  ``VERIFY_NICE`` steps nicer than the web process: below the storefronts and below the stamping
  workers (``WORKER_NICE``), so on a busy machine verification gets what they leave; and outside
  the web process's interpreter, so it takes no GIL from the threads serving the storefront;
* gives each document ``VERIFY_TIME_BUDGET_SECONDS``: the worker checks it before each signature,
  and a worker still busy half a second past it is killed (and started afresh for the next
  document): ``document_too_complex``;
* answers ``verification_busy`` (503 + ``Retry-After``) at once when every worker of the process
  is busy, rather than queueing requests behind a slow document.

The worker process holds certificates only (the trust roots it is given); never a private key.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from issuer.errors import DocumentTooComplex, VerificationBusy
from issuer.signing.verify import VerificationReport
from kernel.errors import ApplicationError, ServiceUnavailable

logger = logging.getLogger(__name__)

_START_TIMEOUT = 60.0  # a worker's first start imports pyHanko: not counted in a document's budget
_GRACE = 0.5  # past the budget before a worker is killed (it normally refuses by itself first)


def _unavailable(message: str) -> ServiceUnavailable:
    error = ServiceUnavailable(message)
    error.headers = {"Retry-After": "5"}
    return error


@dataclass(frozen=True)
class Limits:
    max_signatures: int
    max_revisions: int
    time_budget: float


def _serve(connection, nice: int) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: verify one document at a time, answer with the report or the refusal."""
    if nice > 0:
        os.nice(nice)
    from asn1crypto import x509 as asn1_x509

    from issuer.signing.verify import verify_pdf
    from kernel import faults

    connection.send(("ready", None))
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return  # the web process is gone
        data, roots_der, password, limits = job
        faults.point("verify.validate")  # tests: a document that keeps its worker busy
        try:
            report = verify_pdf(
                data,
                [asn1_x509.Certificate.load(der) for der in roots_der],
                password=password,
                max_signatures=limits.max_signatures,
                max_revisions=limits.max_revisions,
                deadline=time.monotonic() + limits.time_budget,
            )
            answer = ("ok", report)
        except ApplicationError as exc:
            answer = ("refused", (type(exc), exc.message, exc.extra))
        except Exception as exc:  # noqa: BLE001 - reported to the web process, which logs it
            answer = ("failed", f"{type(exc).__name__}: {str(exc)[:300]}")
        try:
            connection.send(answer)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, nice: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, nice), name="emeterai-verify", daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def alive(self) -> bool:
        return self.process.is_alive()

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.connection.poll(_START_TIMEOUT):
            self.kill()
            raise _unavailable("The document verifier did not start; nothing was checked. Retry later.")
        self.connection.recv()
        self.ready = True

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()


class VerificationPool:
    """``size`` worker processes (started when first needed), each verifying one document at a time."""

    def __init__(self, size: int, nice: int) -> None:
        self.size = size
        self.nice = nice
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)  # a free slot whose worker is not started yet

    def verify(self, data: bytes, roots_der: Sequence[bytes], password: str | None, limits: Limits):
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            raise VerificationBusy(
                "Every document verifier of this server is busy; nothing was checked. Retry shortly.",
                retry_after=max(1, round(limits.time_budget / 2)),
            ) from None
        try:
            if worker is None or not worker.alive():
                worker = _Worker(self.nice)
            worker.wait_ready()
            return self._run(worker, (data, tuple(roots_der), password, limits), limits)
        finally:
            self._idle.put(worker if worker is not None and worker.alive() else None)

    def _run(self, worker: _Worker, job: tuple, limits: Limits) -> VerificationReport:
        try:
            worker.connection.send(job)
            answered = worker.connection.poll(limits.time_budget + _GRACE)
            outcome, payload = worker.connection.recv() if answered else (None, None)
        except (EOFError, OSError, BrokenPipeError) as exc:
            worker.kill()
            logger.error("document verifier died", extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})
            raise _unavailable("The document verifier stopped; nothing was checked. Retry later.") from None
        if outcome is None:
            worker.kill()  # still at it past the budget: stop it (the next document gets a fresh one)
            logger.warning("document verification killed past its time budget", extra={"budget": limits.time_budget})
            raise DocumentTooComplex(
                "The document could not be verified within the time verification allows for one document.",
                extra={"reason": "time_budget"},
            )
        if outcome == "ok":
            return payload
        if outcome == "refused":
            cls, message, extra = payload
            raise cls(message, extra=extra)
        logger.error("document verification failed", extra={"reason": payload})
        raise _unavailable("The document could not be verified; nothing was checked. Retry later.")

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()


_pool_lock = threading.Lock()
_pool: VerificationPool | None = None


def reset_pool() -> None:
    """Stop this process's verification workers (tests; the next document starts new ones)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


def pool(size: int, nice: int) -> VerificationPool:
    """The process's pool, made again when its settings changed."""
    global _pool
    with _pool_lock:
        if _pool is None or (_pool.size, _pool.nice) != (size, nice):
            if _pool is not None:
                _pool.close()
            _pool = VerificationPool(size, nice)
        return _pool


def verify_in_pool(
    data: bytes, trust_roots: Sequence[x509.Certificate], password: str | None, *, limits: Limits, size: int, nice: int
) -> VerificationReport:
    roots_der = [cert.public_bytes(serialization.Encoding.DER) for cert in trust_roots]
    return pool(size, nice).verify(data, roots_der, password, limits)
