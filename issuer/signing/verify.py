"""Offline verification of stamped PDFs with pyHanko (no revocation fetching).

Validation costs CPU per signature and per revision after it (pyHanko compares revisions to judge
what changed), so ``verify_pdf`` counts both first, from the cross-reference sections pyHanko reads
when it opens the file, and refuses a document over ``max_signatures`` / ``max_revisions`` with
``document_too_complex`` before validating anything. ``deadline`` (a ``time.monotonic()`` value)
is checked before each signature. ``issuer.verification`` runs this in its own processes, with a
hard time limit.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko_certvalidator import ValidationContext

from issuer.errors import DocumentTooComplex, DocumentUnreadable, NotAPdf, WrongPassword
from issuer.serials import is_valid_serial

_SERIAL_RE = re.compile(r"^\s*\[([0-9A-Z]{22})\]")
_PDF_DATE_RE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(Z|[+-]\d{2}'?\d{2}'?)?")


@dataclass(frozen=True, slots=True)
class SignatureReport:
    field_name: str
    valid: bool  # cryptographically intact and the signer chains to a trusted root
    intact: bool
    trusted: bool
    covers_whole_document: bool
    modified_after: bool  # later revisions exist (allowed or not)
    later_changes_ok: bool  # later revisions, if any, respect DocMDP/FieldMDP
    changes_allowed: bool  # the signature lets the document change after it (False: DocMDP P=1 or a lock P=1)
    modification_level: str | None  # pyHanko's judgement of later revisions: NONE, LTA_UPDATES, FORM_FILLING, ...
    signer_subject: str
    signing_time: dt.datetime | None
    reason: str | None
    location: str | None
    serial: str | None  # from a "[SERIAL] ..." reason with a valid check character
    docmdp: int | None
    timestamp_valid: bool | None


@dataclass(frozen=True, slots=True)
class VerificationReport:
    signatures: tuple[SignatureReport, ...]

    @property
    def valid(self) -> bool:
        return bool(self.signatures) and all(sig.valid and sig.later_changes_ok for sig in self.signatures)

    @property
    def serials(self) -> tuple[str, ...]:
        return tuple(sig.serial for sig in self.signatures if sig.serial is not None and sig.valid)


def parse_pdf_date(value: str | None) -> dt.datetime | None:
    match = _PDF_DATE_RE.match(value or "")
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    tz = dt.UTC
    if zone and zone != "Z":
        digits = zone[1:].replace("'", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = dt.timezone(offset if zone[0] == "+" else -offset)
    return dt.datetime(
        int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
    )


def serial_from_reason(reason: str | None) -> str | None:
    match = _SERIAL_RE.match(reason or "")
    if match is None or not is_valid_serial(match.group(1)):
        return None
    return match.group(1)


def _asn1(cert: x509.Certificate | asn1_x509.Certificate) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def verify_pdf(
    data: bytes,
    trust_roots: Iterable[x509.Certificate | asn1_x509.Certificate],
    *,
    password: str | None = None,
    max_signatures: int | None = None,
    max_revisions: int | None = None,
    deadline: float | None = None,
) -> VerificationReport:
    """Validate every signature of ``data`` against ``trust_roots`` without network access.

    Raises ``document_too_complex`` for a document over the caps (checked before any validation)
    or when ``deadline`` passes before the last signature is validated.
    """
    if not data.startswith(b"%PDF-"):
        raise NotAPdf("The file is not a PDF document.")
    roots = [_asn1(cert) for cert in trust_roots]
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        revisions = reader.xrefs.total_revisions
        if max_revisions is not None and revisions > max_revisions:
            raise DocumentTooComplex(
                f"The document has {revisions} revisions (incremental updates); verification accepts "
                f"at most {max_revisions}.",
                extra={"revisions": revisions, "max_revisions": max_revisions},
            )
        if reader.encrypted:
            result = reader.decrypt(password or "")
            if not result or getattr(result, "status", None) is not None and result.status.name == "FAILED":
                raise WrongPassword("The document password is not correct.")
        if max_signatures is not None:  # counted from the filled signature fields, nothing parsed yet
            count = sum(1 for _field in enumerate_sig_fields(reader, filled_status=True))
            if count > max_signatures:
                raise DocumentTooComplex(
                    f"The document has {count} signatures; verification accepts at most {max_signatures}.",
                    extra={"signatures": count, "max_signatures": max_signatures},
                )
        signatures = list(reader.embedded_signatures)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise DocumentUnreadable("The PDF cannot be read.", extra={"reason": str(exc)[:200]}) from None
    reports = []
    for embedded in signatures:
        if deadline is not None and time.monotonic() > deadline:
            raise _too_slow()
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
        sig_object = embedded.sig_object
        reason = str(sig_object["/Reason"]) if "/Reason" in sig_object else None
        location = str(sig_object["/Location"]) if "/Location" in sig_object else None
        signing_time = parse_pdf_date(str(sig_object["/M"])) if "/M" in sig_object else None
        try:
            status = validate_pdf_signature(embedded, context, ts_validation_context=context)
            intact, trusted = status.intact and status.valid, status.trusted
            covers = status.coverage.name == "ENTIRE_FILE"
            later_changes_ok = status.docmdp_ok is not False and status.modification_level.name != "OTHER"
            modification_level = status.modification_level.name
            subject = status.signing_cert.subject.human_friendly
            timestamp_valid = None
            if status.timestamp_validity is not None:
                timestamp_valid = status.timestamp_validity.valid and status.timestamp_validity.intact
        except (SignatureValidationError, ValueError, KeyError) as exc:
            intact = trusted = covers = later_changes_ok = False
            modification_level = None
            subject = f"(unreadable signature: {str(exc)[:80]})"
            timestamp_valid = None
        level = embedded.docmdp_level
        field = embedded.sig_field
        lock = field["/Lock"] if "/Lock" in field else None
        locked = lock is not None and "/P" in lock and lock["/P"] == 1
        reports.append(
            SignatureReport(
                field_name=embedded.field_name,
                valid=intact and trusted,
                intact=intact,
                trusted=trusted,
                covers_whole_document=covers,
                modified_after=not covers,
                later_changes_ok=later_changes_ok,
                changes_allowed=not locked and (level is None or int(level.value) != 1),
                modification_level=modification_level,
                signer_subject=subject,
                signing_time=signing_time,
                reason=reason,
                location=location,
                serial=serial_from_reason(reason),
                docmdp=int(level.value) if level is not None else None,
                timestamp_valid=timestamp_valid,
            )
        )
    return VerificationReport(tuple(reports))


def _too_slow() -> DocumentTooComplex:
    return DocumentTooComplex(
        "The document could not be verified within the time verification allows for one document.",
        extra={"reason": "time_budget"},
    )
