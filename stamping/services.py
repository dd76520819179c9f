"""Stamping jobs, from request to stamped document. The unit's life is the job's life:

1. ``request_stamp`` (web): checks the document exactly as the issuer will, holds one unit of the
   customer's wallet and writes the job, in ONE transaction; the job is queued after commit.
2. ``run_stamp_job`` (worker): asks the issuer to stamp with ``job_ref`` = the job, and commits the
   hold INSIDE the issuer's recording transaction - serial recorded, unit spent and job stamped
   together. A final failure releases the hold and marks the job failed, together.
3. Any retry - a redelivered task after a worker died, a client polling - finds the job's state
   and the issuer's ``job_ref`` record and never stamps or spends twice. A job whose worker is gone
   for good is resumed by the sweeper; a hold that outlives its timeout is released by the ledger's.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from billing import quota
from billing.ledger import services as ledger
from billing.ledger.errors import LedgerError
from issuer.checks import check_stamp
from issuer.services import RecordingPart, stamp_document
from kernel import faults, metrics
from kernel.db import savepoint_needed
from kernel.errors import ApplicationError, ServiceUnavailable
from outbox import webhooks
from stamping import admission, lanes
from stamping.errors import InsufficientQuota, StampJobNotFound
from stamping.intake import call_intake
from stamping.models import Batch, JobDocument, StampJob, new_job_id
from stamping.secrets import seal, unseal
from stamping.selectors import job_document
from stamping.sql import CALL_RECORDED
from tenants.customers.services import CustomerNotFound

logger = logging.getLogger(__name__)

HOLD_TIMEOUT = timedelta(minutes=30)
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class StampRequest:
    data: bytes
    page: int
    box: tuple[float, float, float, float] | None  # None: box=auto, the issuer chooses it
    profile: str = "default"
    password: str | None = None
    file_name: str = ""
    document_type: str = ""
    document_number: str = ""
    document_date: date | None = None
    reason: str = ""
    location: str = ""


_JOB_FIELDS = tuple(field.attname for field in StampJob._meta.concrete_fields)


def _hold_id(channel, job_id: str) -> str:
    return f"stamp:{channel.pk}:{job_id}"


def request_stamp(
    *,
    channel,
    customer_id: int,
    request: StampRequest,
    batch_id: str | None = None,
    hold_id: str | None = None,
    serial: str = "",
) -> StampJob:
    """Check, hold a unit, record the job; queue it once committed.

    ``hold_id`` and ``serial`` (``stamping.reservations``, inside the caller's transaction): the job
    uses that existing hold (the intake finds it) and stamps with that reserved serial.

    The hold and the two rows are ONE call of ``stamping_intake`` (``stamping.sql``, called by
    ``stamping.intake``): one round trip, one transaction of its own outside
    ``transaction.atomic``, or part of the caller's inside one (a batch: all documents or none).
    """
    checked = check_stamp(
        data=request.data, page=request.page, box=request.box, profile=request.profile, password=request.password
    )
    info = checked.info
    job_id = new_job_id()
    hold_id = hold_id or _hold_id(channel, job_id)
    file_name = request.file_name[:255]
    llx, lly, urx, ury = checked.box
    for attempt in range(2):
        params = [
            job_id,
            customer_id,
            hold_id,
            ledger.wallet_code(channel_id=channel.pk, customer_id=customer_id),
            quota.used_account(channel_id=channel.pk, customer_id=customer_id),
            int(HOLD_TIMEOUT.total_seconds()),
            batch_id,
            file_name,
            info.sha256,
            info.page_count,
            request.page,
            llx,
            lly,
            urx,
            ury,
            request.profile,
            request.document_type,
            request.document_number,
            request.document_date,
            request.reason,
            request.location,
            request.data,
            seal(request.password),
            checked.facts,
        ]
        # Outside a transaction the call is its own (one round trip); inside one, a savepoint keeps a
        # refusal from aborting the caller's transaction - unless the caller rolls it back whole on
        # any refusal anyway (the API's edge: ``kernel.db.atomic_rolled_back_whole``).
        savepoint = savepoint_needed()
        try:
            with transaction.atomic() if savepoint else contextlib.nullcontext():
                created = call_intake(channel.schema_name, params)
            break
        except DatabaseError as exc:
            state = getattr(exc.__cause__, "sqlstate", None)
            if state == "S0001":
                raise CustomerNotFound(f"No customer {customer_id!r} in this channel.") from None
            if state == "L0002":
                raise InsufficientQuota(
                    "This customer has no e-Meterai quota left. Buy quota (POST /api/v1/orders) and try again."
                ) from None
            if state == "L0007" and attempt == 0:
                # The used-units account id came from the process cache and is gone (a restored
                # database, a rolled-back creation): look it up afresh, once.
                ledger.forget_cached_accounts()
                if connection.in_atomic_block and not savepoint:
                    raise _send_it_again() from None  # the transaction is aborted: no second try in it
                continue
            raise
    # The row as stamping_intake wrote it, built the way a query result is (a third of the cost of
    # StampJob(**fields), and the instance knows it is saved).
    row = {
        "id": job_id,
        "customer_id": customer_id,
        "batch_id": batch_id,
        "status": StampJob.Status.QUEUED.value,
        "unit": StampJob.Unit.HELD.value,
        "hold_id": hold_id,
        "file_name": file_name,
        "sha256_in": info.sha256,
        "pages": info.page_count,
        "page": request.page,
        "llx": llx,
        "lly": lly,
        "urx": urx,
        "ury": ury,
        "profile": request.profile,
        "document_type": request.document_type,
        "document_number": request.document_number,
        "document_date": request.document_date,
        "reason": request.reason,
        "location": request.location,
        "serial": "",
        "sha256_out": "",
        "error_code": "",
        "error_detail": "",
        "attempts": 0,
        "created_at": created,
        "started_at": None,
        "finished_at": None,
        "enqueued_at": created,
        "available_at": created,
        "claimed_at": None,
    }
    if serial:  # (the caller's transaction: no worker sees the job before it says its serial)
        StampJob.objects.filter(pk=job_id).update(serial=serial)
        row["serial"] = serial
    job = StampJob.from_db(connection.alias, _JOB_FIELDS, [row[name] for name in _JOB_FIELDS])
    job.covers_content = checked.covers_content  # known at intake for box=auto (not stored)
    job.repaired = checked.repaired  # the issuer rebuilds the file's cross-reference table (Serial.repaired)
    transaction.on_commit(lambda: queued(schema_name=channel.schema_name, budget=channel.stamping_concurrency))
    return job


def _send_it_again() -> ServiceUnavailable:
    error = ServiceUnavailable("The quota books were reloaded while this request ran; nothing was done. Send it again.")
    error.headers = {"Retry-After": "1"}
    return error


def request_batch(*, channel, customer_id: int, requests: list[StampRequest]) -> tuple[Batch, list[StampJob]]:
    """Hold and queue every document of a batch, or none: each document is checked (so every bad one
    is named), and one refusal rolls back every hold and job (``documents`` in the error says which)."""
    with transaction.atomic():
        batch = Batch.objects.create(customer_id=customer_id)
        jobs, refused = [], []
        for index, request in enumerate(requests):
            try:
                jobs.append(request_stamp(channel=channel, customer_id=customer_id, batch_id=batch.id, request=request))
            except ApplicationError as exc:  # (request_stamp's savepoint keeps the batch's transaction usable)
                refused.append((index, request.file_name, exc))
        if refused:
            raise _batch_refused(refused, total=len(requests))  # rolls back every hold and job
    return batch, jobs


def _batch_refused(refused: list[tuple[int, str, ApplicationError]], *, total: int) -> ApplicationError:
    """The first refusal (its code and status), saying which documents were refused and why: ``documents``
    lists each one's ``index`` (0-based, in the order sent), ``file_name``, ``code`` and ``detail``."""
    index, name, first = refused[0]
    documents = [
        {"index": i, "file_name": file_name, "code": exc.code, "detail": exc.message} for i, file_name, exc in refused
    ]
    which = ", ".join(f"{i} ({file_name or 'no name'})" for i, file_name, _ in refused)
    first.message = (
        f"{len(refused)} of {total} documents were refused, so nothing was held or queued: index {which}. "
        f"Index {index}: {first.message} `documents` says why for each; send the batch again without them."
    )
    first.args = (first.message,)
    first.extra = {**first.extra, "documents": documents}
    return first


def event_payload(job: StampJob) -> dict:
    """What channels receive in ``stamp.completed`` / ``stamp.failed``: the job as the API shows it."""
    return {
        "stamp": {
            "id": job.pk,
            "customer": job.customer_id,
            "batch": job.batch_id,
            "status": job.status,
            "unit": job.unit,
            "serial": job.issued_serial or None,
            "sha256": job.sha256_in,
            "file_name": job.file_name,
            "error": {"code": job.error_code, "detail": job.error_detail} if job.error_code else None,
            "document_url": f"/api/v1/stamps/{job.pk}/document" if job.status == StampJob.Status.STAMPED else None,
        }
    }


def queued(*, schema_name: str, budget: int, count: int = 1) -> None:
    """After commit: count the new job(s) on the backlog and make sure the channel's lane is awake
    (by the process's waker thread: the request does not wait for Redis)."""
    faults.point("stamping.before_wake")
    lanes.wake_soon(schema_name=schema_name, budget=budget, queued=count)


def run_stamp_job(*, channel, job_id: str, claimed: lanes.ClaimedJob | None = None) -> StampJob:
    """Stamp one job. Safe to run any number of times, concurrently, after any crash.

    ``claimed`` is the job as :func:`lanes.claim_job` claimed it (processing, attempt counted, with
    its document): then nothing needs reading or marking first."""
    facts = None  # (a job run without a claim, as recovery does, is inspected again)
    if claimed is not None:
        job, original, sealed_password, facts = claimed.job, claimed.original, claimed.sealed_password, claimed.facts
    else:
        with transaction.atomic():
            job = StampJob.objects.select_for_update().filter(pk=job_id).first()
            if job is None:
                raise StampJobNotFound(f"No stamp job {job_id}.")
            if job.status in (StampJob.Status.STAMPED, StampJob.Status.FAILED):
                return job
            job.status = StampJob.Status.PROCESSING
            job.attempts += 1
            job.started_at = job.started_at or timezone.now()
            job.claimed_at = timezone.now()
            job.save(update_fields=["status", "attempts", "started_at", "claimed_at"])
        original, sealed_password = _job_document(job_id)
    faults.point("stamping.before_issuer")

    def recording(serial_row) -> RecordingPart:
        """The channel's part of the issuer's recording statement (``stamping_recorded``): the unit
        committed, the job stamped, its event written - with the serial, in one round trip."""
        faults.point("stamping.before_recording")
        stamped = {
            "status": StampJob.Status.STAMPED.value, "unit": StampJob.Unit.COMMITTED.value,
            "serial": serial_row.serial, "sha256_out": serial_row.stamped_sha256, "finished_at": timezone.now(),
            "error_code": "", "error_detail": "",
        }  # fmt: skip
        view = copy.copy(job)  # the job as it will read once recorded (the event's payload)
        for name, value in stamped.items():
            setattr(view, name, value)
        event_id, payload = webhooks.new_event(COMPLETED, event_payload(view))

        def recorded(delivery_ids) -> None:
            for name, value in stamped.items():  # the row as just written, without reading it back
                setattr(job, name, value)
            webhooks.deliveries_recorded(delivery_ids)

        params = [
            job.pk, quota.commit_id(job.hold_id), job.hold_id, quota.COMMIT_KIND, serial_row.serial,
            serial_row.stamped_sha256, stamped["finished_at"], sealed_password is not None, COMPLETED, event_id,
            payload,
        ]  # fmt: skip
        return RecordingPart(
            sql=_recorded_sql(channel.schema_name), params=params, translate=ledger.error_for, then=recorded
        )

    try:
        outcome = stamp_document(
            channel=channel,
            data=original,
            page=job.page,
            box=(job.llx, job.lly, job.urx, job.ury),
            profile=job.profile,
            password=unseal(sealed_password),
            reason=job.reason,
            location=job.location,
            document_type=job.document_type or None,
            document_number=job.document_number,
            document_date=job.document_date,
            job_ref=f"{channel.schema_name}:{job.pk}",
            recording=recording,
            # A job not stamped has no used serial: both are written in one transaction. (Should one
            # exist anyway, recording finds it and replays it.)
            check_replay=claimed is None,
            serial=job.serial or None,  # a reserved serial (stamping.reservations); none: the issuer mints one
            base_kept=True,  # the upload stays as long as the stamped document (stamping.retention)
            facts=facts,  # the intake's inspection: not parsed and hashed a second time
        )
    except LedgerError as exc:
        # The hold is gone (timed out and swept): the stamp must not happen without its unit.
        return _fail(job, code="hold_lost", detail=f"The quota hold was no longer valid ({exc.code}).")
    except ApplicationError as exc:
        if exc.http_status >= 500 and job.attempts < MAX_ATTEMPTS:
            # A passing fault (signing service busy): back to the lane, not before a backoff.
            StampJob.objects.filter(pk=job.pk, status=StampJob.Status.PROCESSING).update(
                status=StampJob.Status.QUEUED,
                error_code=exc.code,
                error_detail=exc.message[:500],
                available_at=timezone.now() + timedelta(seconds=min(60, 2**job.attempts)),
            )
            job.refresh_from_db()
            return job
        return _fail(job, code=exc.code, detail=exc.message)
    # Serial, unit and job committed together in the issuer's transaction (or, when ``outcome.replayed``,
    # in an earlier attempt's); the row now says stamped.
    if outcome.replayed:
        job.refresh_from_db()
    if job.status != StampJob.Status.STAMPED:  # pragma: no cover - would mean the commit above was lost
        raise RuntimeError(f"job {job.pk} recorded serial {outcome.serial} but reads {job.status}")
    admission.record_completion(channel_schema=channel.schema_name)
    _count_end(job, channel_schema=channel.schema_name)
    return job


COMPLETED = "stamp.completed"


@functools.lru_cache(maxsize=256)
def _recorded_sql(schema: str) -> str:
    """The call of the channel's ``stamping_recorded``, schema-qualified (``kernel.db.raw_cursor``, which
    runs the issuer's statement, sets no search_path)."""
    return CALL_RECORDED.replace("{schema}", connection.ops.quote_name(schema))


def _count_end(job: StampJob, *, channel_schema: str) -> None:
    """The job's end in the metrics: its outcome, its failure code, its actual wait (``kernel.metrics``)."""
    metrics.STAMPS.labels(channel_schema, job.status).inc()
    if job.status == StampJob.Status.FAILED:
        metrics.STAMP_FAILURES.labels(channel_schema, job.error_code or "unknown").inc()
    if job.finished_at and job.created_at:
        metrics.STAMP_WAIT.labels(channel_schema).observe(max(0.0, (job.finished_at - job.created_at).total_seconds()))


def _job_document(job_id: str) -> tuple[bytes, bytes | None]:
    document = job_document(job_id)
    if document is None:
        raise StampJobNotFound(f"No document for stamp job {job_id}.")
    return document


def _fail(job: StampJob, *, code: str, detail: str) -> StampJob:
    with transaction.atomic():
        locked = StampJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (StampJob.Status.STAMPED, StampJob.Status.FAILED):
            return locked
        try:
            quota.release_hold(hold_id=locked.hold_id)
        except LedgerError:
            pass  # already released by the timeout sweeper: the unit is back either way
        locked.status = StampJob.Status.FAILED
        locked.unit = StampJob.Unit.RELEASED
        locked.error_code = code
        locked.error_detail = detail[:500]
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "unit", "error_code", "error_detail", "finished_at"])
        JobDocument.objects.filter(pk=job.pk).update(sealed_password=None)
        webhooks.enqueue_event(event_type="stamp.failed", payload=event_payload(locked))
    admission.record_completion(channel_schema=connection.schema_name)
    _count_end(locked, channel_schema=connection.schema_name)
    return locked


def resume_stale_jobs(*, older_than: timedelta = lanes.LEASE, redis_restarted: bool = False) -> int:
    """Sweeper: take back jobs of vanished workers, wake lanes with waiting work (their tokens started
    over when ``redis_restarted``: :func:`lanes.redis_restarted`), resync the backlog."""
    taken_back = lanes.recover(lease=older_than, redis_restarted=redis_restarted)
    admission.resync_backlog()
    return taken_back


def drain(
    *, channel, time_slice: float = lanes.TIME_SLICE_SECONDS, should_yield=None, timings: dict | None = None
) -> tuple[int, bool]:
    """Stamp the channel's jobs for one time slice, or fewer: after each job, ``should_yield()`` (when
    given) may end the slice early - another lane waits for a worker. Returns (jobs run, more work
    waiting). ``timings``, when given, gets ``first``: the monotonic time the first job was done."""
    deadline = time.monotonic() + time_slice
    done = 0
    with admission.completions_batched():
        try:
            while time.monotonic() < deadline:
                claimed = lanes.claim_job()
                if claimed is None:
                    return done, False
                run_stamp_job(channel=channel, job_id=claimed.job.pk, claimed=claimed)
                done += 1
                if timings is not None and done == 1:
                    timings["first"] = time.monotonic()
                if should_yield is not None and should_yield():
                    break
        finally:
            with contextlib.suppress(DatabaseError):
                lanes.release_owner_locks()
    return done, lanes.has_claimable_work()
