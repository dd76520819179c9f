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


class DocumentUnreadable(DocumentError):
    code = "document_unreadable"
    title = "The PDF is damaged"


class DocumentEncrypted(DocumentError):
    code = "document_encrypted"
    title = "The PDF is password protected"


class WrongPassword(DocumentError):
    code = "wrong_password"
    title = "Wrong document password"


class EncryptionNotSupported(DocumentError):
    code = "encryption_not_supported"
    title = "The PDF uses an outdated encryption"


class DocumentTooLarge(DocumentError):
    code = "document_too_large"
    http_status = 413
    title = "The PDF is too large"


class TooManyPages(DocumentError):
    code = "too_many_pages"
    title = "The PDF has too many pages"


class PageSizeNotAllowed(DocumentError):
    code = "page_size_not_allowed"
    title = "Page size not allowed"


class PdfVersionTooOld(DocumentError):
    code = "pdf_version_too_old"
    title = "PDF version too old"


class DocumentAlreadyFinal(DocumentError):
    code = "document_already_final"
    title = "The PDF is certified and allows no changes"


class DocumentCertified(DocumentError):
    code = "document_certified"
    title = "The PDF is certified and allows no new signature fields"


class DocumentChanged(DocumentError):
    code = "document_changed"
    http_status = 409
    title = "The document changed since it was checked"


class PlacementError(ApplicationError):
    """Base class for a stamp position that cannot be used on this document."""

    code = "placement_error"
    http_status = 422
    title = "The stamp cannot be placed there"


class PageOutOfRange(PlacementError):
    code = "page_out_of_range"
    title = "No such page"


class InvalidStampBox(PlacementError):
    code = "invalid_stamp_box"
    title = "Invalid stamp box"


class StampOutOfBounds(PlacementError):
    code = "stamp_out_of_bounds"
    title = "The stamp is outside the page"


class StampOverlapsSignature(PlacementError):
    code = "stamp_overlaps_signature"
    title = "The stamp covers a signature"


class SigningUnavailable(ApplicationError):
    code = "signing_unavailable"
    http_status = 503
    title = "Signing is temporarily unavailable"
