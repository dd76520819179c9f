"""Retention of stamped documents: the issuer keeps each stamped PDF for ``STAMPED_DOCUMENT_RETENTION_DAYS``
after it was made (so a customer can download it again), then the sweeper deletes it.

The serial stays ``used`` with its document's SHA-256: verification by serial or by upload still
works after the PDF is gone; only the download answers ``410 document_purged``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from issuer.models import StampedDocument
from kernel.errors import ApplicationError

BATCH = 500


class StampedDocumentPurged(ApplicationError):
    code = "document_purged"
    http_status = 410
    title = "The stamped document is no longer kept"
    what_to_do = (
        "Stamped documents are kept for a limited time (see the channel's terms) and this one has been deleted. "
        "The stamp is still valid and verifiable; use the copy you downloaded."
    )


def purge_stamped_documents(*, older_than: datetime, batch: int = BATCH, limit: int = 100_000) -> int:
    """Delete stamped PDFs made before ``older_than``, ``batch`` rows a transaction, at most ``limit`` in
    one run. Rows another sweeper holds are skipped (``SKIP LOCKED``), so two instances running this at
    once delete each row once and never wait for each other. Returns how many were deleted."""
    table = connection.ops.quote_name(StampedDocument._meta.db_table)
    deleted = 0
    while deleted < limit:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM public.{table} WHERE serial_id IN ("  # noqa: S608 - the model's own table name
                f" SELECT serial_id FROM public.{table} WHERE created_at < %s"
                "  LIMIT %s FOR UPDATE SKIP LOCKED)",
                [older_than, min(batch, limit - deleted)],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch:
            break
    return deleted


def stamped_documents_due(*, older_than: datetime) -> int:
    return StampedDocument.objects.filter(created_at__lt=older_than).count()
