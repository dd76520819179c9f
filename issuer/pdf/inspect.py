"""Read-only inspection of an uploaded PDF (wraps pikepdf).

Inspection never decompresses page content streams and never writes: it reads the cross-reference
structure, the page tree (after checking ``/Count``), page boxes and the signature fields.  A file
that qpdf could only read by reconstructing its cross-reference table is refused as
``document_unreadable``: the signer appends an incremental update whose ``/Prev`` must point at a
valid cross-reference section of the original bytes.

Residual risk (documented): objects stored in compressed object streams are inflated by qpdf when
first read; the byte limit checked before parsing bounds that, but a hostile object stream can
still inflate about 1000:1.  Run workers with a memory limit.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf
from pikepdf._core import EncryptionMethod

from issuer.errors import (
    DocumentEncrypted,
    DocumentTooLarge,
    DocumentUnreadable,
    EncryptionNotSupported,
    NotAPdf,
    TooManyPages,
    WrongPassword,
)
from issuer.pdf.geometry import Rect, displayed_size

HEADER_RE = re.compile(rb"%PDF-(\d)\.(\d)")
_STARTXREF_RE = re.compile(rb"startxref\s+(\d+)\s*(?:%%EOF)?\s*$")
_OBJ_HEADER_RE = re.compile(rb"\s*(\d+)\s+(\d+)\s+obj\b")
# qpdf warnings about things every viewer tolerates and that do not affect an incremental update
_BENIGN_WARNINGS = ("Resources is missing or invalid",)
_MAX_FIELD_DEPTH = 32
_MAX_PARENT_DEPTH = 64
_SUPPORTED_ENCRYPTION = {
    # (R, stream/string method) combinations we can read and extend correctly
    (4, EncryptionMethod.aes),
    (6, EncryptionMethod.aesv3),
}


@dataclass(frozen=True, slots=True)
class PageGeom:
    """Geometry of one page.

    ``visible`` is CropBox ∩ MediaBox in default user space; ``width``/``height`` are the size of
    that area as the viewer shows it, i.e. swapped for pages rotated by 90 or 270 degrees.
    """

    index: int
    width: float
    height: float
    rotate: int
    visible: Rect
    media_box: Rect


@dataclass(frozen=True, slots=True)
class SignatureFieldInfo:
    field_name: str
    page_index: int | None
    rect: Rect | None
    signed: bool
    is_certification: bool
    docmdp_permission: int | None
    lock_permission: int | None
    sub_filter: str | None

    @property
    def forbids_changes(self) -> bool:
        """A certification with P=1, or (PDF 2.0) a field lock with P=1, forbids any change."""
        return self.signed and (self.docmdp_permission == 1 or self.lock_permission == 1)

    @property
    def forbids_new_fields(self) -> bool:
        """A certification with P=2 allows form filling and signing EXISTING signature fields only;
        a stamp needs a new field, which validators (pyHanko, Acrobat) count as a forbidden change."""
        return self.signed and self.is_certification and self.docmdp_permission == 2


@dataclass(frozen=True, slots=True)
class EncryptionInfo:
    revision: int
    method: str
    key_bits: int


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    size: int
    sha256: str
    pdf_version: str
    header_version: str
    page_count: int
    pages: tuple[PageGeom, ...]
    encrypted: bool
    encryption: EncryptionInfo | None
    signatures: tuple[SignatureFieldInfo, ...]
    uses_xref_stream: bool
    startxref: int
    linearized: bool
    need_appearances: bool = False  # the AcroForm asks viewers to draw its fields (/NeedAppearances true)

    @property
    def is_signed(self) -> bool:
        return any(sig.signed for sig in self.signatures)

    @property
    def forbids_changes(self) -> bool:
        return any(sig.forbids_changes for sig in self.signatures)

    @property
    def forbids_new_fields(self) -> bool:
        return any(sig.forbids_new_fields for sig in self.signatures)

    def page(self, page_number: int) -> PageGeom:
        return self.pages[page_number - 1]


def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DocumentTooLarge(
            f"The file is {size / 1024:.0f} KB; at most {max_bytes / 1024:.0f} KB is accepted. "
            "Reduce the scan resolution or compress the PDF and upload it again.",
            extra={"size": size, "max_bytes": max_bytes},
        )


def header_version(data: bytes) -> str:
    match = HEADER_RE.match(data, 0, 16)
    if match is None:
        raise NotAPdf("The file is not a PDF document (it does not start with %PDF-). Upload a PDF file.")
    return f"{int(match.group(1))}.{int(match.group(2))}"


def last_startxref(data: bytes) -> tuple[int, bool]:
    """Offset of the last cross-reference section and whether it is an xref stream."""
    tail_start = max(0, len(data) - 2048)
    position = data.rfind(b"startxref", tail_start)
    match = _STARTXREF_RE.match(data, position) if position >= 0 else None
    if match is None:
        raise DocumentUnreadable(
            "The PDF is truncated or damaged (no end-of-file marker). Upload the complete, original file."
        )
    offset = int(match.group(1))
    if offset >= len(data):
        raise DocumentUnreadable("The PDF is damaged (its cross-reference offset points past the end).")
    if data.startswith(b"xref", offset):
        return offset, False
    if _OBJ_HEADER_RE.match(data, offset):
        return offset, True
    raise DocumentUnreadable(
        "The PDF is damaged (its cross-reference table is not where the file says). "
        "Open and save it again with a PDF application, then upload it."
    )


def open_pdf(data: bytes, password: str | None) -> pikepdf.Pdf:
    """Open ``data`` strictly (no xref reconstruction) and map pikepdf errors to ours."""
    try:
        return pikepdf.open(
            io.BytesIO(data),
            password=password or "",
            attempt_recovery=False,
            inherit_page_attributes=False,
        )
    except pikepdf.PasswordError:
        if not password:
            raise DocumentEncrypted(
                "The PDF is protected with a password. Provide the document password to stamp it."
            ) from None
        raise WrongPassword("The document password is not correct.") from None
    except (pikepdf.PdfError, ValueError, RuntimeError) as exc:
        raise DocumentUnreadable(
            "The PDF is damaged and cannot be read without repair. "
            "Open and save it again with a PDF application, then upload it.",
            extra={"reason": str(exc)[:200]},
        ) from None


def encryption_info(pdf: pikepdf.Pdf) -> EncryptionInfo | None:
    if not pdf.is_encrypted:
        return None
    enc = pdf.encryption
    methods = {enc.stream_method, enc.string_method} - {EncryptionMethod.none}
    if not methods or any((enc.R, method) not in _SUPPORTED_ENCRYPTION for method in methods):
        raise EncryptionNotSupported(
            "The PDF uses an old or weak encryption (RC4 or an obsolete AES variant) that cannot be "
            "stamped. Remove the password protection, or re-save the file with AES-128 or AES-256 "
            "encryption.",
            extra={"encryption_revision": enc.R},
        )
    method = "AES-256" if enc.R == 6 else "AES-128"
    return EncryptionInfo(revision=enc.R, method=method, key_bits=enc.bits)


def _rect(value: object) -> Rect | None:
    try:
        box = pikepdf.Rectangle(value)  # exactly four numbers, or TypeError
    except (TypeError, ValueError):
        return None
    return Rect.normalized(box.llx, box.lly, box.urx, box.ury)


def _parent_chain(node: object) -> Iterator[tuple[pikepdf.Dictionary, set[str]]]:
    """``node`` and its ``/Parent`` ancestors with their keys, nearest first (bounded, loop safe).

    Callers test keys with ``in`` before reading them: pikepdf answers a missing key through an
    exception, which costs several times a lookup."""
    seen: set[tuple[int, int]] = set()
    current = node
    for _ in range(_MAX_PARENT_DEPTH):
        if not isinstance(current, pikepdf.Dictionary):
            return
        keys = current.keys()
        yield current, keys
        objgen = current.objgen
        if "/Parent" not in keys or objgen in seen:
            return
        if objgen != (0, 0):
            seen.add(objgen)
        current = current["/Parent"]


def inherited(node: pikepdf.Dictionary, key: str) -> object | None:
    """Look ``key`` up on a page or field and its ``/Parent`` chain."""
    for current, keys in _parent_chain(node):
        if key in keys:
            return current[key]
    return None


_PAGE_INHERITED = ("/MediaBox", "/CropBox", "/Rotate")


def page_attributes(page: pikepdf.Dictionary) -> dict[str, object]:
    """A page's inheritable MediaBox, CropBox and Rotate, each from the page or its nearest ancestor
    that has it, in one walk up the chain."""
    found: dict[str, object] = {}
    for current, keys in _parent_chain(page):
        for key in _PAGE_INHERITED:
            if key not in found and key in keys:
                found[key] = current[key]
        if len(found) == len(_PAGE_INHERITED):
            break
    return found


def page_geometry(index: int, page: pikepdf.Dictionary) -> PageGeom:
    attributes = page_attributes(page)
    media = _rect(attributes.get("/MediaBox"))
    if media is None or media.is_empty:
        raise DocumentUnreadable(f"Page {index + 1} has no valid page size (MediaBox).")
    crop = _rect(attributes.get("/CropBox")) or media
    visible = crop.intersection(media)
    if visible.is_empty:
        visible = media
    raw_rotate = attributes.get("/Rotate")
    try:
        rotate = int(raw_rotate) if raw_rotate is not None else 0  # type: ignore[call-overload]
    except (TypeError, ValueError):
        rotate = 0
    rotate = (round(rotate / 90) * 90) % 360
    width, height = displayed_size(visible, rotate)
    return PageGeom(index, width, height, rotate, visible, media)


def _walk_fields(
    fields: object, parent_name: str, depth: int, seen: set[tuple[int, int]]
) -> Iterator[tuple[str, pikepdf.Dictionary]]:
    """Yield (qualified name, terminal field) for every terminal field of the AcroForm tree."""
    if depth > _MAX_FIELD_DEPTH or not isinstance(fields, pikepdf.Array):
        return
    for field in fields:
        if not isinstance(field, pikepdf.Dictionary):
            continue
        objgen = field.objgen
        if objgen != (0, 0):
            if objgen in seen:
                continue
            seen.add(objgen)
        partial = field.get("/T")
        name = parent_name
        if partial is not None:
            text = str(partial)
            name = f"{parent_name}.{text}" if parent_name else text
        kids = field.get("/Kids")
        named_kids = isinstance(kids, pikepdf.Array) and any(
            isinstance(kid, pikepdf.Dictionary) and "/T" in kid for kid in kids
        )
        if named_kids:
            yield from _walk_fields(kids, name, depth + 1, seen)
        else:
            yield name, field


def _widgets(field: pikepdf.Dictionary) -> list[pikepdf.Dictionary]:
    kids = field.get("/Kids")
    if isinstance(kids, pikepdf.Array):
        return [kid for kid in kids if isinstance(kid, pikepdf.Dictionary)]
    return [field]


def _docmdp_permission(sig: pikepdf.Dictionary) -> int | None:
    references = sig.get("/Reference")
    if not isinstance(references, pikepdf.Array):
        return None
    for reference in references:
        if isinstance(reference, pikepdf.Dictionary) and reference.get("/TransformMethod") == "/DocMDP":
            params = reference.get("/TransformParams")
            value = params.get("/P", 2) if isinstance(params, pikepdf.Dictionary) else 2
            try:
                return int(value)
            except (TypeError, ValueError):
                return 2
    return None


def signature_fields(pdf: pikepdf.Pdf, page_ids: dict[tuple[int, int], int]) -> tuple[SignatureFieldInfo, ...]:
    root = pdf.Root
    acroform = root["/AcroForm"] if "/AcroForm" in root else None  # usually absent (see page_attributes)
    if not isinstance(acroform, pikepdf.Dictionary):
        return ()
    perms = pdf.Root.get("/Perms")
    certifying = perms.get("/DocMDP") if isinstance(perms, pikepdf.Dictionary) else None
    certifying_id = certifying.objgen if isinstance(certifying, pikepdf.Dictionary) else None
    annotation_pages: dict[tuple[int, int], int] | None = None
    result: list[SignatureFieldInfo] = []
    for name, field in _walk_fields(acroform.get("/Fields"), "", 0, set()):
        if inherited(field, "/FT") != "/Sig":
            continue
        value = field.get("/V")
        signed = isinstance(value, pikepdf.Dictionary)
        is_certification = False
        docmdp = None
        sub_filter = None
        if signed:
            docmdp = _docmdp_permission(value)
            is_certification = docmdp is not None or (certifying_id is not None and value.objgen == certifying_id)
            if is_certification and docmdp is None:
                docmdp = 2
            sub = value.get("/SubFilter")
            sub_filter = str(sub)[1:] if isinstance(sub, pikepdf.Name) else None
        lock = field.get("/Lock")
        lock_permission = None
        if isinstance(lock, pikepdf.Dictionary) and "/P" in lock:
            try:
                lock_permission = int(lock["/P"])
            except (TypeError, ValueError):
                lock_permission = None
        for widget in _widgets(field):
            page_index = None
            page_ref = widget.get("/P")
            if isinstance(page_ref, pikepdf.Dictionary):
                page_index = page_ids.get(page_ref.objgen)
            if page_index is None and widget.objgen != (0, 0):
                if annotation_pages is None:
                    annotation_pages = _annotation_pages(pdf)
                page_index = annotation_pages.get(widget.objgen)
            result.append(
                SignatureFieldInfo(
                    field_name=name,
                    page_index=page_index,
                    rect=_rect(widget.get("/Rect")),
                    signed=signed,
                    is_certification=is_certification,
                    docmdp_permission=docmdp,
                    lock_permission=lock_permission,
                    sub_filter=sub_filter,
                )
            )
    return tuple(result)


def _annotation_pages(pdf: pikepdf.Pdf) -> dict[tuple[int, int], int]:
    mapping: dict[tuple[int, int], int] = {}
    for index, page in enumerate(pdf.pages):
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            for annot in annots:
                if isinstance(annot, pikepdf.Dictionary) and annot.objgen != (0, 0):
                    mapping.setdefault(annot.objgen, index)
    return mapping


def effective_version(pdf: pikepdf.Pdf, header: str) -> str:
    """The later of the header version and the catalog's ``/Version`` (ISO 32000-1, 7.7.2)."""
    root = pdf.Root
    catalog_version = root["/Version"] if "/Version" in root else None  # usually absent
    if isinstance(catalog_version, pikepdf.Name):
        text = str(catalog_version)[1:]
        if re.fullmatch(r"\d\.\d", text) and version_tuple(text) > version_tuple(header):
            return text
    return header


def count_pages(pdf: pikepdf.Pdf, max_pages: int) -> int:
    declared = pdf.Root.get("/Pages")
    declared_count = declared.get("/Count") if isinstance(declared, pikepdf.Dictionary) else None
    if not isinstance(declared_count, int):
        raise DocumentUnreadable("The PDF has no valid page tree.")
    if declared_count > max_pages:
        raise TooManyPages(
            f"The PDF has {declared_count} pages; at most {max_pages} are accepted.",
            extra={"page_count": int(declared_count), "max_pages": max_pages},
        )
    try:
        count = len(pdf.pages)
    except (pikepdf.PdfError, RuntimeError) as exc:
        raise DocumentUnreadable(
            "The PDF's page tree is damaged. Open and save it again with a PDF application.",
            extra={"reason": str(exc)[:200]},
        ) from None
    if count > max_pages:
        raise TooManyPages(
            f"The PDF has {count} pages; at most {max_pages} are accepted.",
            extra={"page_count": count, "max_pages": max_pages},
        )
    if count == 0:
        raise DocumentUnreadable("The PDF has no pages.")
    return count


def inspect_document(
    data: bytes, *, password: str | None = None, max_bytes: int, max_pages: int = 2000
) -> DocumentInfo:
    """Check that ``data`` is a PDF we can stamp and describe it; raise a DocumentError if not."""
    check_size(len(data), max_bytes)
    header = header_version(data)
    startxref, uses_xref_stream = last_startxref(data)
    digest = hashlib.sha256(data).hexdigest()
    pdf = open_pdf(data, password)
    try:
        return _describe(pdf, data, header, digest, startxref, uses_xref_stream, max_pages)
    except (pikepdf.PdfError, RuntimeError) as exc:
        raise DocumentUnreadable(
            "The PDF is damaged and cannot be read. Open and save it again with a PDF application.",
            extra={"reason": str(exc)[:200]},
        ) from None
    finally:
        pdf.close()


def _describe(
    pdf: pikepdf.Pdf,
    data: bytes,
    header: str,
    digest: str,
    startxref: int,
    uses_xref_stream: bool,
    max_pages: int,
) -> DocumentInfo:
    encryption = encryption_info(pdf)
    page_count = count_pages(pdf, max_pages)
    pages = []
    page_ids: dict[tuple[int, int], int] = {}
    for index, page in enumerate(pdf.pages):
        pages.append(page_geometry(index, page.obj))
        page_ids[page.obj.objgen] = index
    warnings = [text for text in map(str, pdf.get_warnings()) if not any(b in text for b in _BENIGN_WARNINGS)]
    if warnings:
        raise DocumentUnreadable(
            "The PDF has structural errors and would need repair. "
            "Open and save it again with a PDF application, then upload it.",
            extra={"reason": str(warnings[0])[:200]},
        )
    return DocumentInfo(
        size=len(data),
        sha256=digest,
        pdf_version=effective_version(pdf, header),
        header_version=header,
        page_count=page_count,
        pages=tuple(pages),
        encrypted=encryption is not None,
        encryption=encryption,
        signatures=signature_fields(pdf, page_ids),
        uses_xref_stream=uses_xref_stream,
        startxref=startxref,
        linearized=bool(pdf.is_linearized),
        need_appearances=need_appearances(pdf),
    )


def need_appearances(pdf: pikepdf.Pdf) -> bool:
    root = pdf.Root
    acroform = root["/AcroForm"] if "/AcroForm" in root else None
    if not isinstance(acroform, pikepdf.Dictionary) or "/NeedAppearances" not in acroform:
        return False
    return acroform["/NeedAppearances"] is True
