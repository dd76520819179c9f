"""Retention of uploads: a job's uploaded document (``JobDocument``) is kept ``UPLOAD_RETENTION_DAYS``
after the job ended (stamped or failed), for support questions, then the sweeper deletes it. A job
queued or being stamped keeps its upload whatever its age: the worker still needs it.

A stamped job's upload is also the first part of its stamped document: the issuer's registry keeps
only what the stamp appended (``issuer.models.StampedDocument.base_size``). Such an upload is kept
as long as the stamped document is (``STAMPED_DOCUMENT_RETENTION_DAYS``), and goes in the same sweep
(the stamped documents first). It holds nothing the stamped document does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from issuer.models import Serial, StampedDocument
from stamping.models import JobDocument, StampJob

BATCH = 500
_FINISHED = (StampJob.Status.STAMPED.value, StampJob.Status.FAILED.value)


def purge_uploads(*, older_than: datetime, batch: int = BATCH, limit: int = 100_000) -> int:
    """In the current channel's schema: delete the uploads of jobs that ended before ``older_than``,
    ``batch`` rows a transaction (``SKIP LOCKED``: safe to run on several instances at once)."""
    documents = connection.ops.quote_name(JobDocument._meta.db_table)
    jobs = connection.ops.quote_name(StampJob._meta.db_table)
    stamped = f"public.{connection.ops.quote_name(StampedDocument._meta.db_table)}"
    serials = f"public.{connection.ops.quote_name(Serial._meta.db_table)}"
    deleted = 0
    while deleted < limit:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {documents} WHERE job_id IN ("  # noqa: S608 - the models' own table names
                f" SELECT d.job_id FROM {documents} d JOIN {jobs} j ON j.id = d.job_id"
                "  WHERE j.status = ANY(%s) AND j.finished_at < %s"
                f"  AND NOT EXISTS (SELECT 1 FROM {stamped} s JOIN {serials} r ON r.id = s.serial_id"
                "   WHERE r.serial = j.serial AND s.base_size > 0)"
                "  LIMIT %s FOR UPDATE OF d SKIP LOCKED)",
                [list(_FINISHED), older_than, min(batch, limit - deleted)],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch:
            break
    return deleted


def uploads_due(*, older_than: datetime, stamped_before: datetime | None = None) -> int:
    """How many uploads :func:`purge_uploads` would delete once the stamped documents made before
    ``stamped_before`` (None: none) are deleted."""
    stamped_on = StampedDocument.objects.filter(serial__serial=OuterRef("job__serial"), base_size__gt=0)
    if stamped_before is not None:
        stamped_on = stamped_on.filter(created_at__gte=stamped_before)
    return (
        JobDocument.objects.filter(job__status__in=_FINISHED, job__finished_at__lt=older_than)
        .filter(~Exists(stamped_on))
        .count()
    )


def cutoffs(now: datetime) -> dict[str, datetime | None]:
    """Everything made (stamped documents) or ended (uploads) before these times is due; None: kept
    for ever (a retention of 0 days)."""
    from django.conf import settings

    def before(days: int) -> datetime | None:
        return now - timedelta(days=days) if days > 0 else None

    return {
        "stamped_documents": before(settings.STAMPED_DOCUMENT_RETENTION_DAYS),
        "uploads": before(settings.UPLOAD_RETENTION_DAYS),
    }


def sweep(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """The retention sweeper: stamped documents (the issuer's) and every channel's uploads that are due.
    With ``dry_run`` only counts them. Safe to run twice, and on several instances at once."""
    from django_tenants.utils import schema_context

    from issuer.retention import purge_stamped_documents, stamped_documents_due
    from tenants.models import Channel

    due = cutoffs(now or timezone.now())
    result = {"stamped_documents": 0, "uploads": 0}
    if due["stamped_documents"] is not None:
        cutoff = due["stamped_documents"]
        result["stamped_documents"] = (
            stamped_documents_due(older_than=cutoff) if dry_run else purge_stamped_documents(older_than=cutoff)
        )
    if due["uploads"] is not None:
        for channel in Channel.objects.filter(kind=Channel.Kind.CHANNEL).exclude(schema_name="public"):
            with schema_context(channel.schema_name):
                cutoff = due["uploads"]
                result["uploads"] += (
                    uploads_due(older_than=cutoff, stamped_before=due["stamped_documents"])
                    if dry_run
                    else purge_uploads(older_than=cutoff)
                )
    return result
