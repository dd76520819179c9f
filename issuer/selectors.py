"""Issuer reads: public verification by serial and by document, profiles, document types.

What verification shows is what anyone holding the document (or a photo of its QR code) may
see: the serial's status and time, the channel that sold it, the profile and document type.  It
never shows document hashes, document numbers or dates, the requesting customer or the void
reason: a serial is public once printed, so its lookup must not reveal more than the paper does.
Upload verification compares hashes server-side and answers with booleans (plus the uploaded
file's own hash, which the uploader already has).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from issuer.engine import signing_roots, trust_roots
from issuer.models import DocumentType, IncidentNote, Serial, StampedDocument, StampProfile
from issuer.pdf.inspect import check_size
from issuer.serials import SERIAL_LENGTH, is_valid_serial, normalize_serial
from issuer.signing import SignatureReport
from issuer.stamp import verification_url
from issuer.verification import Limits, verify_in_pool
from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)


class InvalidSerial(ApplicationError):
    code = "invalid_serial"
    http_status = 400
    title = "Not a valid serial number"
    what_to_do = "Not 22 letters and digits with a matching check character: a mistyped serial."


class SerialNotFound(ApplicationError):
    code = "serial_not_found"
    http_status = 404
    title = "Unknown serial number"
    what_to_do = "This issuer never recorded the serial: a document carrying it is not validly stamped."


def serial_get(serial: str) -> Serial:
    """The registry row of ``serial`` (as typed: spaces and case are forgiven)."""
    value = normalize_serial(serial)
    if not is_valid_serial(value):
        raise InvalidSerial(
            f"{value[:40]!r} is not an e-Meterai serial: a serial is {SERIAL_LENGTH} letters and digits "
            "whose last character is a check character. Check for a mistyped character.",
            extra={"serial": value[:40]},
        )
    try:
        return Serial.objects.select_related("channel", "document_type").get(serial=value)
    except Serial.DoesNotExist:
        raise SerialNotFound(
            f"The serial {value} was not issued by this issuer. A document carrying it is not validly stamped.",
            extra={"serial": value},
        ) from None


def _public(row: Serial) -> dict:
    used = row.status == Serial.Status.USED
    return {
        "serial": row.serial,
        "status": row.status,
        "valid": used,
        "used_at": row.used_at.isoformat() if used and row.used_at else None,
        "voided_at": row.voided_at.isoformat() if row.voided_at else None,
        "channel": {"code": row.channel.code, "name": row.channel.name},
        "profile": row.profile,
        "document_type": row.document_type.name if row.document_type else None,
        "verification_url": verification_url(settings.VERIFY_BASE_URL, row.serial),
    }


def verify_serial(serial: str) -> dict:
    """Public status of a serial: ``used`` (valid, with its time) or ``void`` (never completed)."""
    return _public(serial_get(serial))


def _signature(sig: SignatureReport) -> dict:
    return {
        "field": sig.field_name,
        "valid": sig.valid and sig.later_changes_ok,
        "intact": sig.intact,
        "trusted": sig.trusted,
        "covers_whole_document": sig.covers_whole_document,
        "changes_allowed": sig.changes_allowed,
        "signer": sig.signer_subject,
        "signing_time": sig.signing_time.isoformat() if sig.signing_time else None,
        "reason": sig.reason,
        "serial": sig.serial,
    }


# What may follow an e-Meterai that allows changes (``default``): another e-Meterai or signature
# (pyHanko counts a new signature as form filling) or a document timestamp; not new annotations
# drawn over the page, nor any other change. NONE is not among them: bytes appended after the
# stamp that make no revision (a comment, garbage) leave the stamp's revision "unmodified" for
# pyHanko, yet the file is not the one stamped.
_PERMITTED_LATER = frozenset({"LTA_UPDATES", "FORM_FILLING"})


def _stamp(sig: SignatureReport, row: Serial | None, data: bytes) -> dict:
    registered = row is not None
    used = registered and row.status == Serial.Status.USED
    size = row.stamped_size if used else None
    matches = bool(used and size is not None and size <= len(data))
    matches = matches and hashlib.sha256(data[:size]).hexdigest() == row.stamped_sha256
    later = matches and size != len(data)
    if not later:
        unchanged = matches and sig.covers_whole_document
    else:
        unchanged = (
            matches and sig.changes_allowed and sig.later_changes_ok and sig.modification_level in _PERMITTED_LATER
        )
    checks = {
        "signature_intact": sig.intact,
        "signer_trusted": sig.trusted,
        "registered": registered,
        "serial_used": used,
        "matches_registry": matches,
        "unchanged_since_stamping": unchanged,
    }
    failed = next((name for name, ok in checks.items() if not ok), None)
    stamp = {
        "serial": sig.serial, "valid": failed is None, "failed_check": failed, "checks": checks,
        "changes_allowed": sig.changes_allowed, "later_revisions": later,
    }  # fmt: skip
    if registered:
        stamp["registry"] = _public(row)
    return stamp


def verify_document(data: bytes, password: str | None = None) -> dict:
    """Verify an uploaded PDF: every e-Meterai signature, and each serial against the registry.

    ``valid`` is True when the document carries at least one e-Meterai whose signature is intact
    and chains to the issuer's roots, whose serial is recorded ``used``, whose recorded output
    hash equals the signed revision, and nothing was appended after it.  Other parties'
    signatures are listed but do not decide ``valid`` (their roots are not ours to trust).

    The signatures are validated in the verification pool (``issuer.verification``): capped,
    time-bounded and away from the web process's CPU share.
    """
    check_size(len(data), settings.STAMP_DEFAULT_MAX_BYTES)
    report = verify_in_pool(
        data,
        trust_roots(),
        password,
        limits=Limits(
            max_signatures=settings.VERIFY_MAX_SIGNATURES,
            max_revisions=settings.VERIFY_MAX_REVISIONS,
            time_budget=settings.VERIFY_TIME_BUDGET_SECONDS,
        ),
        size=settings.VERIFY_WORKERS,
        nice=settings.VERIFY_NICE,
    )
    claimed = [sig for sig in report.signatures if sig.serial is not None]
    rows = {row.serial: row for row in Serial.objects.select_related("channel", "document_type").filter(
        serial__in=[sig.serial for sig in claimed]
    )}  # fmt: skip
    stamps = [_stamp(sig, rows.get(sig.serial or ""), data) for sig in claimed]
    valid = bool(stamps) and all(stamp["valid"] for stamp in stamps)
    if not stamps:
        failed = "no_stamp"
    else:
        failed = next((stamp["failed_check"] for stamp in stamps if not stamp["valid"]), None)
    return {
        "valid": valid,
        "failed_check": failed,
        "document_sha256": hashlib.sha256(data).hexdigest(),
        "stamps": stamps,
        "signatures": [_signature(sig) for sig in report.signatures],
    }


def root_certificate(*, pem: bool = True) -> bytes:
    """The issuer's root certificate (the first root its signing key chains to), PEM or DER: what a
    verifier imports to trust e-Meterai signatures (docs/issuer.md)."""
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return signing_roots()[0].public_bytes(encoding)


def active_profiles() -> QuerySet[StampProfile]:
    return StampProfile.objects.filter(active=True).order_by("name")


def document_types() -> QuerySet[DocumentType]:
    return DocumentType.objects.filter(active=True).order_by("name")


def used_serials_per_bucket(*, bucket: timedelta, origin: datetime, end: datetime) -> list[tuple[int, datetime, int]]:
    """(channel id, bucket start, serials used) for the buckets from ``origin`` to ``end``, by ``used_at``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT channel_id, date_bin(%s, used_at, %s), count(*) FROM {Serial._meta.db_table}"  # noqa: S608 - table name from the model
            " WHERE status = 'used' AND used_at >= %s AND used_at < %s GROUP BY 1, 2",
            [bucket, origin, origin, end],
        )
        return cursor.fetchall()


def recent_serials(limit: int = 20) -> list[Serial]:
    """The serials recorded last, with their channels."""
    return list(Serial.objects.select_related("channel").order_by("-created_at")[:limit])


def resolved_incidents(limit: int = 30) -> list:
    return list(IncidentNote.objects.filter(resolved_at__isnull=False)[:limit])


def stamped_pdf(*, serial: str, upload: Callable[[], bytes | None]) -> bytes:
    """The stamped PDF recorded with ``serial``; :class:`StampedDocumentPurged` once the retention
    sweeper deleted it (``issuer.retention``). ``upload()`` gives the document as it was sent to be
    stamped (None: no longer kept); it is called only when the registry stores what the stamp appended
    to it (``StampedDocument.base_size``)."""
    from issuer.retention import StampedDocumentPurged

    document = StampedDocument.objects.filter(serial__serial=serial).first()
    pdf = None if document is None else document.whole(upload() if document.base_size else None)
    if pdf is None:
        if document is not None:
            logger.error("stamped document without its upload", extra={"serial": serial})
        raise StampedDocumentPurged(f"The stamped document of {serial} was deleted after its retention period.")
    return pdf
