"""Issuer writes: stamping a document and recording its serial.

``stamp_document`` is the only way a serial enters the registry as ``used``.  The order is:

1. refuse early: profile, document type, idempotent replay, inspection, profile and placement
   checks (nothing is minted or recorded for a refusal);
2. mint a serial in memory and sign (no database transaction is open while signing, so a slow
   time-stamping authority holds no locks);
3. in ONE transaction: insert the ``Serial`` row (``used``), store the stamped PDF, run the
   caller's part of the recording, commit. That part is either an SQL expression evaluated in the
   very statement that inserts the serial (``recording``, a :class:`RecordingPart`: a channel's stamp
   job commits its unit and marks its job there, one round trip in all) or a callback run inside the
   transaction (``on_recorded(serial_row)``).

If step 2 or 3 fails, nothing is recorded as used and the stamped bytes are thrown away; the
minted serial is recorded ``void`` with the reason in a separate, best-effort write, so the
registry accounts for every serial that ever went into a signature (audit, failure rates) and a
serial value is never used twice.  A serial collision (about 2**-108 per pair) re-signs with a new
serial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from issuer.engine import get_engine
from issuer.errors import SigningUnavailable
from issuer.facts import unseal as unseal_facts
from issuer.models import DocumentType, Serial, StampedDocument, StampProfile
from issuer.pdf import ProfileRules, check_placement, check_profile
from issuer.pdf.prepare import prepare_document
from issuer.serials import new_serial
from issuer.signing import StampResult
from issuer.stamp import verification_url
from kernel.db import raw_cursor
from kernel.errors import ApplicationError
from tenants.models import Channel

logger = logging.getLogger(__name__)

MAX_SERIAL_ATTEMPTS = 3
MAX_JOB_REF_LENGTH = 200

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class RecordingPart:
    """A caller's part of a stamp's recording, evaluated in the same statement as the serial's insert.

    ``sql`` is one SQL expression (``%s`` placeholders, its tables schema-qualified), evaluated once,
    after the used serial and its stamped document are inserted; ``params`` are its parameters. If it
    raises, nothing is recorded: ``translate(error)`` may turn the database error into the caller's
    own (None: raised as it is). Once the statement has committed (or, inside a caller's transaction,
    run), ``then(value)`` gets the expression's value.
    """

    sql: str
    params: list
    translate: Callable[[DatabaseError], Exception | None]
    then: Callable[[object], None]


class UnknownProfile(ApplicationError):
    code = "unknown_profile"
    http_status = 422
    title = "Unknown document profile"
    what_to_do = "No active stamp profile of that name; see `GET /api/v1/document-types`."


class UnknownDocumentType(ApplicationError):
    code = "unknown_document_type"
    http_status = 422
    title = "Unknown document type"
    what_to_do = "No active document type with that code; list them with `GET /api/v1/document-types`."


class JobRefConflict(ApplicationError):
    code = "job_ref_conflict"
    http_status = 409
    title = "The job reference was used for another stamp"
    what_to_do = (
        "This job reference already stamped another document or position; use a new job reference for a new stamp."
    )


class SerialTaken(ApplicationError):
    code = "serial_taken"
    http_status = 409
    title = "The reserved serial is already used"
    what_to_do = "This serial already stamped a document; reserve a new serial for a new document."


class ChannelInactive(ApplicationError):
    code = "channel_inactive"
    http_status = 403
    title = "The channel is suspended"
    what_to_do = "This channel is suspended and cannot stamp; contact the issuer."


@dataclass(frozen=True, slots=True)
class StampOutcome:
    """A recorded stamp.  ``replayed`` is True when ``job_ref`` found an earlier stamp."""

    serial: str
    pdf: bytes
    sha256_in: str
    sha256_out: str
    pages: int
    page: int
    box: Box
    profile: str
    certification: bool
    upgraded_to: str | None
    signed_at: dt.datetime
    verification_url: str
    channel_code: str
    job_ref: str | None
    replayed: bool = False
    repaired: bool = False

    def as_dict(self) -> dict:
        """Everything but the PDF bytes, JSON-ready."""
        return {
            "serial": self.serial,
            "sha256_in": self.sha256_in,
            "sha256_out": self.sha256_out,
            "size_out": len(self.pdf),
            "pages": self.pages,
            "page": self.page,
            "box": list(self.box),
            "profile": self.profile,
            "certification": self.certification,
            "upgraded_to": self.upgraded_to,
            "repaired": self.repaired,
            "signed_at": self.signed_at.isoformat(),
            "verification_url": self.verification_url,
            "channel": self.channel_code,
            "job_ref": self.job_ref,
            "replayed": self.replayed,
        }


class _JobAlreadyStamped(Exception):
    """Another call recorded this job first (seen under the job's lock)."""


class _SerialTaken(Exception):
    """The minted serial is already in the registry."""


def _profile(name: str) -> StampProfile:
    try:
        return StampProfile.objects.get(name=name, active=True)
    except StampProfile.DoesNotExist:
        names = ", ".join(StampProfile.objects.filter(active=True).values_list("name", flat=True))
        raise UnknownProfile(
            f"There is no document profile {name!r}. Use one of: {names}.", extra={"profile": name}
        ) from None


PROFILE_CACHE_SECONDS = 5.0
_rules_cache: dict[str, tuple[float, ProfileRules]] = {}


def _profile_rules(name: str) -> ProfileRules:
    """An active profile's rules, read at most every ``PROFILE_CACHE_SECONDS`` per process (a
    profile changed or withdrawn in the back office applies to stamps signed a few seconds later;
    the request path's check caches them for 30)."""
    now = time.monotonic()
    hit = _rules_cache.get(name)
    if hit is not None and hit[0] > now:
        return hit[1]
    rules = _profile(name).to_rules()
    _rules_cache[name] = (now + PROFILE_CACHE_SECONDS, rules)
    return rules


def _document_type(code: str | None) -> DocumentType | None:
    if not code:
        return None
    try:
        return DocumentType.objects.get(code=code, active=True)
    except DocumentType.DoesNotExist:
        raise UnknownDocumentType(
            f"There is no document type {code!r}; list them with GET /api/v1/document-types.",
            extra={"document_type": code},
        ) from None


def _normalised_box(box: Box) -> Box:
    llx, lly, urx, ury = (float(v) for v in box)
    return (llx, lly, urx, ury)


def _outcome_from_row(row: Serial, *, replayed: bool, upload: bytes) -> StampOutcome:
    pdf = row.stamped.whole(upload)  # (the upload hashes to the row's document_sha256: the caller compared)
    if pdf is None:  # pragma: no cover - a stamp stored over another upload than the one it hashes as
        raise RuntimeError(f"the stamped document of {row.serial} does not rebuild from its upload")
    return StampOutcome(
        serial=row.serial,
        pdf=pdf,
        sha256_in=row.document_sha256,
        sha256_out=row.stamped_sha256,
        pages=row.page_count,
        page=row.page,
        box=row.box,
        profile=row.profile,
        certification=row.certification,
        upgraded_to=row.upgraded_to or None,
        repaired=row.repaired,
        signed_at=row.used_at,
        verification_url=verification_url(settings.VERIFY_BASE_URL, row.serial),
        channel_code=row.channel.code,
        job_ref=row.job_ref,
        replayed=replayed,
    )


def _replay(
    *, channel: Channel, job_ref: str, sha256_in: str, page: int, box: Box, profile: str, upload: bytes
) -> StampOutcome | None:
    row = (
        Serial.objects.select_related("channel", "stamped")
        .filter(channel=channel, job_ref=job_ref, status=Serial.Status.USED)
        .first()
    )
    if row is None:
        return None
    if (row.document_sha256, row.page, row.box, row.profile) != (sha256_in, page, box, profile):
        raise JobRefConflict(
            f"The job reference {job_ref!r} already stamped a different document or position "
            f"(serial {row.serial}). Use a new job reference for a new stamp.",
            extra={"job_ref": job_ref, "serial": row.serial},
        )
    return _outcome_from_row(row, replayed=True, upload=upload)


def _record_used(
    *,
    channel: Channel,
    result: StampResult,
    repaired: bool,
    info_pages: int,
    box: Box,
    profile: str,
    document_type: DocumentType | None,
    document_number: str,
    document_date: dt.date | None,
    job_ref: str | None,
    on_recorded: Callable[[Serial], object] | None,
    base: bytes | None,
    recording: Callable[[Serial], RecordingPart] | None = None,
) -> Serial:
    """Serial (used), stamped file and the caller's part (``recording``'s statement part, or
    ``on_recorded``) in one transaction.

    Two used serials for one job cannot both commit: ``serial_one_used_per_job`` is a unique index,
    and an insert that meets a concurrent one for the same job waits for its outcome. The insert is
    the transaction's first statement, so a unique violation (this job stamped meanwhile, or the
    serial taken) costs no savepoint: the transaction is rolled back and the cause looked up after.

    With ``recording`` alone, outside a caller's transaction, that statement IS the transaction (the
    connection is in autocommit): no BEGIN, no COMMIT, one round trip.
    """
    fields = {
        "serial": result.serial, "channel_id": channel.pk, "status": Serial.Status.USED.value, "profile": profile,
        "document_sha256": result.sha256_in, "stamped_sha256": result.sha256_out, "stamped_size": len(result.pdf),
        "page": result.page, "page_count": info_pages, "box_llx": box[0], "box_lly": box[1], "box_urx": box[2],
        "box_ury": box[3], "certification": result.certification, "upgraded_to": result.upgraded_to or "",
        "repaired": repaired,
        "document_type_id": document_type.pk if document_type else None, "document_number": document_number,
        "document_date": document_date, "job_ref": job_ref, "created_at": timezone.now(), "used_at": result.signed_at,
        "voided_at": None, "void_reason": "",
    }  # fmt: skip
    part = None
    own_transaction = on_recorded is not None or recording is None or connection.in_atomic_block
    try:
        with transaction.atomic() if own_transaction else contextlib.nullcontext():
            row = Serial(**fields)
            part = recording(row) if recording is not None else None
            row.pk, value = _insert_used(fields, result, base=base, part=part)
            row._state.adding = False
            if on_recorded is not None:
                on_recorded(row)
    except IntegrityError:
        if Serial.objects.filter(serial=result.serial).exists():
            raise _SerialTaken from None
        if (
            job_ref is not None
            and Serial.objects.filter(channel=channel, job_ref=job_ref, status=Serial.Status.USED).exists()
        ):
            raise _JobAlreadyStamped from None
        raise
    except DatabaseError as exc:
        error = part.translate(exc) if part is not None else None
        if error is None:
            raise
        raise error from exc
    if part is not None:
        part.then(value)
    return row


def _insert_used(
    fields: dict, result: StampResult, *, base: bytes | None, part: RecordingPart | None = None
) -> tuple[int, object]:
    """Insert the serial row and its stamped PDF in one statement (one round trip); the PDF goes as a
    binary parameter: through Django's cursor it would travel as a hex literal in the query text
    (twice its size), for PostgreSQL to parse and decode. Returns the serial row's id and the value
    of the caller's ``part`` (None without one), evaluated in the same statement after both inserts.

    ``base``: the upload, which the caller keeps for as long as the stamped document. When the stamped
    file begins with it (an incremental update of the upload as sent), only the bytes after it are
    stored (``StampedDocument.base_size``)."""
    public = connection.ops.quote_name(get_public_schema_name())
    names = list(fields)
    sql = (
        f"WITH serial AS (INSERT INTO {public}.{Serial._meta.db_table} ({', '.join(names)})"  # noqa: S608 - our names
        f" VALUES ({', '.join(['%s'] * len(names))}) RETURNING id)"
        f", document AS (INSERT INTO {public}.{StampedDocument._meta.db_table}"
        " (serial_id, pdf, sha256, size, base_size, created_at)"
        " SELECT id, %b, %s, %s, %s, %s FROM serial RETURNING serial_id)"
        f" SELECT serial_id, {part.sql if part is not None else 'NULL'} FROM document"
    )
    pdf, base_size = result.pdf, 0
    if base and pdf.startswith(base):
        base_size = len(base)
        pdf = memoryview(pdf)[base_size:]
    params = [*fields.values(), pdf, result.sha256_out, len(result.pdf), base_size, fields["created_at"]]
    if part is not None:
        params.extend(part.params)
    with raw_cursor() as cursor:  # (prepared: every stamp runs it, and its parse and plan cost more than its run)
        cursor.execute(sql, params, prepare=True)
        serial_id, value = cursor.fetchone()
        return serial_id, value


def _record_void(
    *,
    channel: Channel,
    serial: str,
    sha256_in: str,
    page: int,
    page_count: int,
    box: Box,
    profile: str,
    job_ref: str | None,
    reason: str,
) -> None:
    """Best effort: a failure to write the audit row must not hide the original error."""
    now = timezone.now()
    try:
        with transaction.atomic():
            Serial.objects.create(
                serial=serial,
                channel=channel,
                status=Serial.Status.VOID,
                profile=profile,
                document_sha256=sha256_in,
                page=page,
                page_count=page_count,
                box_llx=box[0],
                box_lly=box[1],
                box_urx=box[2],
                box_ury=box[3],
                job_ref=job_ref,
                voided_at=now,
                void_reason=reason[:300],
            )
    except DatabaseError:
        logger.exception("could not record void serial", extra={"serial": serial})


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return f"{exc.code}: {exc.message}"
    return f"internal: {type(exc).__name__}"


def stamp_document(
    *,
    channel: Channel,
    data: bytes,
    page: int,
    box: Box,
    profile: str = "default",
    password: str | None = None,
    reason: str = "",
    location: str = "",
    document_type: str | None = None,
    document_number: str = "",
    document_date: dt.date | None = None,
    job_ref: str | None = None,
    on_recorded: Callable[[Serial], object] | None = None,
    recording: Callable[[Serial], RecordingPart] | None = None,
    check_replay: bool = True,
    serial: str | None = None,
    base_kept: bool = False,
    facts: str | None = None,
) -> StampOutcome:
    """Check, mint, stamp, sign and record one e-Meterai on ``data`` for ``channel``.

    ``page`` is 1-based; ``box`` is (llx, lly, urx, ury) in points from the bottom-left of the
    page as displayed.  ``document_type`` is a ``DocumentType.code``.  With ``job_ref`` the call
    is idempotent per channel: the same job_ref and request return the recorded stamp (same serial,
    same bytes, ``replayed=True``); the same job_ref with another document or position raises
    ``JobRefConflict``.  ``on_recorded(serial_row)`` runs inside the recording transaction, after
    the serial row is written; if it raises, nothing is recorded as used and the error propagates.
    ``recording(serial_row)`` (not yet inserted) returns the caller's :class:`RecordingPart`, which
    the insert's own statement evaluates: a refusal there records nothing either.

    Raises the ``issuer.errors`` refusals, ``UnknownProfile``, ``UnknownDocumentType``,
    ``JobRefConflict``, ``ChannelInactive`` or ``SigningUnavailable``.

    ``check_replay=False`` skips the look-up of an earlier stamp before signing, for a caller that
    knows there is none (it still replays one found when recording: nothing is ever stamped twice).

    ``serial``: a serial reserved for this stamp beforehand (the compat facade's ``stampv2``), used
    instead of minting one. A failure then records no void row, so the same serial can be stamped by
    a retry; a serial already in the registry is refused (``SerialTaken``), never minted anew.

    ``base_kept``: the caller keeps ``data`` unchanged for as long as the stamped document is kept, and
    passes it back to read the document (``issuer.selectors.stamped_pdf``). The registry then stores
    only the bytes the stamp appended to it (``StampedDocument.base_size``), not a second copy.

    ``facts``: ``data``'s inspection as ``issuer.checks.check_stamp`` sealed it at intake
    (``StampCheck.facts``); the document is then not inspected again (``issuer.facts``). The profile
    and the placement are checked again all the same, and the engine refuses bytes the facts do not
    describe.
    """
    if job_ref is not None:
        job_ref = job_ref.strip() or None
        if job_ref is not None and len(job_ref) > MAX_JOB_REF_LENGTH:
            raise ValueError(f"job_ref is longer than {MAX_JOB_REF_LENGTH} characters")
    if not channel.is_active:
        raise ChannelInactive("This channel is suspended and cannot stamp documents. Contact the issuer.")
    rules = _profile_rules(profile)
    doc_type = _document_type(document_type)
    box = _normalised_box(box)
    sha256_in = hashlib.sha256(data).hexdigest() if check_replay else ""
    if job_ref is not None and check_replay:
        replayed = _replay(
            channel=channel, job_ref=job_ref, sha256_in=sha256_in, page=page, box=box, profile=profile, upload=data
        )
        if replayed is not None:
            return replayed

    rules = dataclasses.replace(rules, max_bytes=min(rules.max_bytes, settings.STAMP_DEFAULT_MAX_BYTES))
    prepared = prepare_document(
        data, password=password, max_bytes=rules.max_bytes, max_pages=rules.max_pages, known=unseal_facts(facts)
    )
    info = prepared.info
    check_profile(info, rules)
    check_placement(info, page, box, rules)
    sha256_in = prepared.upload_sha256
    engine = get_engine()

    reserved = serial
    for _attempt in range(MAX_SERIAL_ATTEMPTS):
        serial = reserved or new_serial()
        void = {
            "channel": channel, "serial": serial, "sha256_in": sha256_in, "page": page,
            "page_count": info.page_count, "box": box, "profile": profile, "job_ref": job_ref,
        }  # fmt: skip
        try:
            result = engine.stamp(
                prepared.data, info=info, page=page, box=box, serial=serial, reason=reason, location=location,
                signed_at=timezone.now(), password=password, rules=rules,
            )  # fmt: skip
            if prepared.rewritten:  # the registry keeps the upload's hash (replays compare it)
                result = dataclasses.replace(result, sha256_in=sha256_in)
        except BaseException as exc:
            if reserved is None:  # (a reserved serial stays with its reservation for a retry)
                _record_void(**void, reason=f"signing failed: {_failure_reason(exc)}")
            raise
        try:
            row = _record_used(
                channel=channel, result=result, info_pages=info.page_count, box=box, profile=profile,
                document_type=doc_type, document_number=document_number, document_date=document_date,
                job_ref=job_ref, on_recorded=on_recorded, repaired=prepared.repaired, base=data if base_kept else None,
                recording=recording,
            )  # fmt: skip
        except _SerialTaken:
            if reserved is not None:
                raise SerialTaken(
                    f"The serial {serial} is already in the registry; it cannot stamp this document.",
                    extra={"serial": serial},
                ) from None
            logger.warning("serial collision, signing again", extra={"serial": serial})
            continue
        except _JobAlreadyStamped:
            if reserved is None:
                _record_void(**void, reason="superseded: a concurrent call stamped this job first")
            replayed = _replay(
                channel=channel, job_ref=job_ref or "", sha256_in=sha256_in, page=page, box=box, profile=profile,
                upload=data,
            )  # fmt: skip
            if replayed is None:  # pragma: no cover - the row was seen under the lock
                raise
            return replayed
        except BaseException as exc:
            if reserved is None:
                _record_void(**void, reason=f"recording failed: {_failure_reason(exc)}")
            raise
        return StampOutcome(
            serial=row.serial,
            pdf=result.pdf,
            sha256_in=result.sha256_in,
            sha256_out=result.sha256_out,
            pages=info.page_count,
            page=result.page,
            box=box,
            profile=profile,
            certification=result.certification,
            upgraded_to=result.upgraded_to,
            signed_at=result.signed_at,
            verification_url=result.verification_url,
            channel_code=channel.code,
            job_ref=job_ref,
            repaired=prepared.repaired,
        )
    raise SigningUnavailable("Could not mint a unique serial; try again.")  # pragma: no cover


# --------------------------------------------------------------------------- document profiles

PROFILE_FIELDS = (
    "description", "max_bytes", "page_width", "page_height", "page_size_tolerance", "min_pdf_version", "max_pages",
    "min_stamp_size", "max_stamp_size", "certification", "active",
)  # fmt: skip


def _check_profile_rules(profile: StampProfile) -> None:
    """The model's check constraints, said the way a person fixes them (before the database says it
    by a constraint's name)."""
    errors: dict[str, str] = {}
    if (profile.page_width is None) != (profile.page_height is None) or (
        profile.page_width is not None and (profile.page_width <= 0 or profile.page_height <= 0)
    ):
        errors["page_width"] = "give both page width and height (above 0), or neither for any size"
    if profile.max_bytes is not None and profile.max_bytes <= 0:
        errors["max_bytes"] = "the largest size must be above 0"
    if profile.min_stamp_size is not None and profile.max_stamp_size is not None:
        if not 0 < profile.min_stamp_size <= profile.max_stamp_size:
            errors["min_stamp_size"] = "the smallest stamp side must be above 0 and not above the largest"
    if profile.min_pdf_version and not re.fullmatch(r"[12]\.[0-9]", profile.min_pdf_version):
        errors["min_pdf_version"] = f"{profile.min_pdf_version!r} is not a PDF version: write e.g. 1.6, or none"
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_profile(*, name: str, **changes) -> tuple[StampProfile, bool]:
    """Create the document profile ``name`` or change the given fields of an existing one; returns
    (profile, created). Every rule of the model is checked first: a ``ValidationError`` names each
    field that is wrong, and nothing is written. Stamps pick the change up within
    ``PROFILE_CACHE_SECONDS`` (and the request path's check within 30 s)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not a profile field: {', '.join(sorted(unknown))}")
    profile = StampProfile.objects.select_for_update().filter(name=name).first()
    created = profile is None
    if created:
        profile = StampProfile(name=name)
    for field, value in changes.items():
        setattr(profile, field, value)
    _check_profile_rules(profile)
    profile.full_clean()  # and every field's own format
    profile.save()
    _rules_cache.pop(name, None)
    return profile, created
