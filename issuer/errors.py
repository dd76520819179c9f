"""Errors raised by the stamping engine.

Each class carries a stable ``code`` (documented in ``docs/errors-issuer.md``) and the HTTP
status the API layer should answer with.  Messages are written for the person who has to fix
the document or the request.
"""

from __future__ import annotations

from kernel.errors import ApplicationError


class DocumentError(ApplicationError):
    """Base class for problems with the uploaded document itself."""

    code = "document_error"
    http_status = 422
    title = "The document cannot be stamped"


class NotAPdf(DocumentError):
    code = "not_a_pdf"
    http_status = 415
    title = "Not a PDF file"
    what_to_do = "The file is not a PDF (it must start with `%PDF-`)."


class DocumentUnreadable(DocumentError):
    code = "document_unreadable"
    title = "The PDF is damaged"
    what_to_do = "The PDF is truncated or damaged."


class DocumentEncrypted(DocumentError):
    code = "document_encrypted"
    title = "The PDF is password protected"
    what_to_do = "The PDF is password protected; send `password`."


class WrongPassword(DocumentError):
    code = "wrong_password"
    title = "Wrong document password"
    what_to_do = "The password is not the document's user or owner password."


class EncryptionNotSupported(DocumentError):
    code = "encryption_not_supported"
    title = "The PDF uses an outdated encryption"
    what_to_do = "Only AES-128 (R4) and AES-256 (R6) encrypted PDFs are accepted."


class DocumentTooLarge(DocumentError):
    code = "document_too_large"
    http_status = 413
    title = "The PDF is too large"
    what_to_do = "The file is larger than the profile allows."


class TooManyPages(DocumentError):
    code = "too_many_pages"
    title = "The PDF has too many pages"
    what_to_do = "The PDF has more pages than the profile allows."


class PageSizeNotAllowed(DocumentError):
    code = "page_size_not_allowed"
    title = "Page size not allowed"
    what_to_do = "A page is not the profile's page size."


class PdfVersionTooOld(DocumentError):
    code = "pdf_version_too_old"
    title = "PDF version too old"
    what_to_do = "The profile needs a newer PDF version."


class DocumentAlreadyFinal(DocumentError):
    code = "document_already_final"
    title = "The PDF is certified and allows no changes"
    what_to_do = "A certification signature (DocMDP P=1) forbids any change."


class DocumentCertified(DocumentError):
    code = "document_certified"
    title = "The PDF is certified and allows no new signature fields"
    what_to_do = "A certification signature (DocMDP P=2) forbids a new signature field."


class DocumentChanged(DocumentError):
    code = "document_changed"
    http_status = 409
    title = "The document changed since it was checked"
    what_to_do = "The bytes to stamp are not the ones that were checked; check the document again, then stamp it."


class PlacementError(ApplicationError):
    """Base class for a stamp position that cannot be used on this document."""

    code = "placement_error"
    http_status = 422
    title = "The stamp cannot be placed there"


class PageOutOfRange(PlacementError):
    code = "page_out_of_range"
    title = "No such page"
    what_to_do = "`page` is past the end of the document."


class InvalidStampBox(PlacementError):
    code = "invalid_stamp_box"
    title = "Invalid stamp box"
    what_to_do = "The box is inverted or a side is outside 20-300 pt."


class StampOutOfBounds(PlacementError):
    code = "stamp_out_of_bounds"
    title = "The stamp is outside the page"
    what_to_do = "The box is not fully inside the visible page."


class StampOverlapsSignature(PlacementError):
    code = "stamp_overlaps_signature"
    title = "The stamp covers a signature"
    what_to_do = "The box overlaps an existing signature."


class SigningUnavailable(ApplicationError):
    code = "signing_unavailable"
    http_status = 503
    title = "Signing is temporarily unavailable"
    what_to_do = (
        "The signing key, its certificate or the time-stamping authority is briefly unavailable; "
        "nothing was used. Retry later."
    )


class DocumentTooComplex(DocumentError):
    code = "document_too_complex"
    title = "The PDF is too complex to verify"
    what_to_do = (
        "The document has more signatures or revisions (incremental updates) than verification accepts, "
        "or could not be verified within its time budget. Verify the signed original, before later additions."
    )


class VerificationBusy(ApplicationError):
    code = "verification_busy"
    http_status = 503
    title = "Verification is busy"
    what_to_do = (
        "Every document verifier of this server is busy; nothing was checked. Retry after `Retry-After` seconds."
    )
    sheds_load = True  # answered, not logged as a server error

    def __init__(self, message: str, *, retry_after: int = 2, extra: dict | None = None):
        super().__init__(message, extra=extra)
        self.headers = {"Retry-After": str(retry_after)}
