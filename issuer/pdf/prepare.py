"""Making an uploaded document stampable where it may still be rewritten.

The stamp is an incremental update of the uploaded bytes.  Two kinds of file need more than that,
and an *unsigned*, unencrypted document may be rewritten first (no signature of anyone depends on
its bytes):

* a damaged cross-reference table (wrong offsets, a missing or broken table): qpdf rebuilds it
  from the objects themselves, and the rebuilt file is stamped (``repaired``).  A file that is cut
  short (no end-of-file marker) is not repaired: content is missing, not misindexed.  A damaged
  *signed* document stays refused, since rewriting it would break its signatures;
* an AcroForm with ``/NeedAppearances true``: poppler-based viewers (Evince, Okular, pdftoppm)
  then regenerate every field's appearance and skip the signature widget, so the stamp is not
  drawn.  The fields' appearance streams are generated (qpdf) and the flag dropped.  On a signed
  or encrypted document only the flag is cleared, in the stamp's own update (the engine does it,
  as pyHanko does when it adds a signature field).

The stamp then goes on the rewritten bytes; the registry still records the hash of the upload.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pikepdf

from issuer.errors import DocumentUnreadable
from issuer.pdf.inspect import DocumentInfo, inspect_document

_TAIL = 1024


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    data: bytes  # the bytes to stamp (the upload, or its rewrite)
    info: DocumentInfo  # ``data`` inspected
    upload_sha256: str
    repaired: bool = False
    appearances_generated: bool = False

    @property
    def rewritten(self) -> bool:
        return self.repaired or self.appearances_generated


def prepare_document(
    data: bytes,
    *,
    password: str | None = None,
    max_bytes: int,
    max_pages: int = 2000,
    known: DocumentInfo | None = None,
) -> PreparedDocument:
    """Inspect ``data``; repair it or generate its field appearances when it is unsigned and needs it.

    ``known``: ``data``'s inspection made earlier (at intake: ``issuer.facts``), used instead of
    inspecting again when it is of this many bytes and within the limits; a document that needed
    rewriting has none. Whether it describes these very bytes the engine checks by its own hash
    before it signs (``DocumentChanged``).

    Raises what ``inspect_document`` raises for a document that cannot be made stampable.
    """
    if known is not None and known.size == len(data) and known.size <= max_bytes and known.page_count <= max_pages:
        return PreparedDocument(data, known, known.sha256)
    try:
        info = inspect_document(data, password=password, max_bytes=max_bytes, max_pages=max_pages)
    except DocumentUnreadable as refusal:
        rewritten = _repaired(data, password, refusal)
        info = inspect_document(rewritten, password=password, max_bytes=max_bytes, max_pages=max_pages)
        upload_sha256 = hashlib.sha256(data).hexdigest()
        return PreparedDocument(rewritten, info, upload_sha256, repaired=True)
    if info.need_appearances and not info.is_signed and not info.encrypted:
        rewritten = _rewrite(data, password)
        fresh = inspect_document(rewritten, password=password, max_bytes=max_bytes, max_pages=max_pages)
        return PreparedDocument(rewritten, fresh, info.sha256, appearances_generated=True)
    return PreparedDocument(data, info, info.sha256)


def _repaired(data: bytes, password: str | None, refusal: DocumentUnreadable) -> bytes:
    """``data`` rewritten by qpdf after rebuilding its cross-reference table, or ``refusal`` raised."""
    if b"%%EOF" not in data[-_TAIL:]:
        raise refusal  # truncated: not a damaged index but a missing part
    try:
        pdf = pikepdf.open(
            io.BytesIO(data), password=password or "", attempt_recovery=True, inherit_page_attributes=False
        )
    except (pikepdf.PdfError, ValueError, RuntimeError):
        raise refusal from None
    try:
        if pdf.is_encrypted:
            raise refusal  # re-encrypting needs the owner password, which we do not have
        if _has_signature(pdf):
            raise DocumentUnreadable(
                "The PDF is damaged and carries a signature: repairing it would break that signature. "
                "Ask the signer for an intact copy of the signed document.",
                extra={"reason": str(refusal.extra.get("reason", refusal.message))[:200]},
            )
        if len(pdf.pages) == 0:
            raise refusal
        return _save(pdf)
    except (pikepdf.PdfError, RuntimeError):
        raise refusal from None
    finally:
        pdf.close()


def _rewrite(data: bytes, password: str | None) -> bytes:
    pdf = pikepdf.open(io.BytesIO(data), password=password or "", inherit_page_attributes=False)
    try:
        return _save(pdf)
    finally:
        pdf.close()


def _save(pdf: pikepdf.Pdf) -> bytes:
    acroform = pdf.Root.get("/AcroForm")
    if isinstance(acroform, pikepdf.Dictionary) and acroform.get("/NeedAppearances") is True:
        pdf.generate_appearance_streams()
        if "/NeedAppearances" in acroform:
            del acroform["/NeedAppearances"]
    buffer = io.BytesIO()
    pdf.save(buffer, fix_metadata_version=False)
    return buffer.getvalue()


def _has_signature(pdf: pikepdf.Pdf) -> bool:
    """Any signature value in the AcroForm or on a page's widgets (a damaged file may have lost
    its AcroForm, so the pages are looked at as well)."""
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if not isinstance(annots, pikepdf.Array):
            continue
        for annot in annots:
            if isinstance(annot, pikepdf.Dictionary) and _is_signed_field(annot):
                return True
    acroform = pdf.Root.get("/AcroForm")
    fields = acroform.get("/Fields") if isinstance(acroform, pikepdf.Dictionary) else None
    if isinstance(fields, pikepdf.Array):
        return any(isinstance(field, pikepdf.Dictionary) and _is_signed_field(field) for field in fields)
    return False


def _is_signed_field(field: pikepdf.Dictionary) -> bool:
    node = field
    for _ in range(32):
        if node.get("/FT") == "/Sig":
            return isinstance(field.get("/V", node.get("/V")), pikepdf.Dictionary)
        parent = node.get("/Parent")
        if not isinstance(parent, pikepdf.Dictionary):
            return False
        node = parent
    return False
