"""Reads of a channel's stamping jobs (current schema)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from kernel.db import narrowed, raw_cursor
from stamping.errors import StampJobNotFound
from stamping.models import Batch, StampJob


def stamp_jobs_for_listing(
    *,
    customer_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[StampJob]:
    """The channel's jobs, newest first (created, then id), narrowed by customer, status and a
    ``[since, until)`` window of creation times."""
    return narrowed(StampJob.objects.all(), customer_id=customer_id, status=status, since=since, until=until)


IN_FLIGHT = (StampJob.Status.QUEUED, StampJob.Status.PROCESSING)


def jobs_in_flight() -> int:
    """The channel's jobs queued or being stamped."""
    return StampJob.objects.filter(status__in=IN_FLIGHT).count()


def oldest_waiting_since() -> datetime | None:
    """When the channel's oldest queued job was accepted (None: nothing queued); read through the
    lane's partial index on queued jobs."""
    return (
        StampJob.objects.filter(status=StampJob.Status.QUEUED).order_by("created_at")
        .values_list("created_at", flat=True).first()
    )


def stamp_jobs_for_portal(*, status: str = "") -> QuerySet[StampJob]:
    """The channel's jobs with their customers, newest first (the model's order); only ``status``'s
    when it is one."""
    jobs = StampJob.objects.select_related("customer").defer("error_detail")
    if status in StampJob.Status.values:
        jobs = jobs.filter(status=status)
    return jobs


def recent_stamp_jobs(limit: int = 5) -> list[StampJob]:
    return list(StampJob.objects.select_related("customer")[:limit])


def stamp_job_get(*, job_id: str) -> StampJob:
    job = StampJob.objects.filter(pk=job_id).first()
    if job is None:
        raise StampJobNotFound(f"No stamp {job_id!r} in this channel.")
    return job


def jobs_ahead_of(job: StampJob) -> int:
    """The lane's jobs queued or being stamped that came before ``job`` (as the 202 counts them)."""
    return StampJob.objects.filter(status__in=IN_FLIGHT, created_at__lt=job.created_at).count()


def batch_get(*, batch_id: str) -> Batch:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise StampJobNotFound(f"No batch {batch_id!r} in this channel.")
    return batch


def oldest_queued_at() -> datetime | None:
    """When the channel's oldest queued job was accepted (None: nothing waits); served by the
    ``stampjob_queued`` partial index."""
    return (
        StampJob.objects.filter(status=StampJob.Status.QUEUED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def job_document(job_id: str) -> tuple[bytes, bytes | None] | None:
    """The job's uploaded document and sealed password (None: no longer kept), read in binary: Django's
    cursor would have PostgreSQL send the bytes as hex text (twice their size) and decode them here."""
    table = f"{connection.ops.quote_name(connection.schema_name)}.stamping_jobdocument"
    with raw_cursor() as cursor:
        cursor.execute(f"SELECT original, sealed_password FROM {table} WHERE job_id = %s", [job_id], binary=True)  # noqa: S608 - quoted schema name
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def stamped_document(job: StampJob) -> bytes:
    """The stamped PDF of a stamped job (``issuer.retention.StampedDocumentPurged`` once deleted). The
    issuer's registry keeps what the stamp appended to the job's upload; the upload is the channel's
    (``stamping.retention`` keeps it as long as the stamped document)."""
    from issuer.selectors import stamped_pdf

    def upload() -> bytes | None:
        document = job_document(job.pk)
        return None if document is None else document[0]

    return stamped_pdf(serial=job.serial, upload=upload)
