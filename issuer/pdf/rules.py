"""Document profiles (agency rules) and stamp placement checks."""

from __future__ import annotations

from dataclasses import dataclass

from issuer.errors import (
    DocumentAlreadyFinal,
    DocumentCertified,
    InvalidStampBox,
    PageOutOfRange,
    PageSizeNotAllowed,
    PdfVersionTooOld,
    StampOutOfBounds,
    StampOverlapsSignature,
)
from issuer.pdf.geometry import Rect, display_to_user
from issuer.pdf.inspect import DocumentInfo, check_size, version_tuple

A4 = (595.276, 841.89)

# How the stamp signs a document (``ProfileRules.certification``):
NOT_CERTIFIED = "not_certified"  # an approval signature: later e-Meterai and signatures stay possible
NO_CHANGES = "no_changes"  # DocMDP P=1 (or a field lock P=1 after other signatures): the stamp is final
CERTIFICATION_LEVELS = (NOT_CERTIFIED, NO_CHANGES)


@dataclass(frozen=True, slots=True)
class ProfileRules:
    """Rules an agency puts on documents, e.g. BKN's for civil-service applications.

    ``page_size`` is (width, height) in points, compared in either orientation within
    ``page_size_tolerance`` points, or None for any size.  ``min_pdf_version`` is compared with the
    document's effective version (header or catalog ``/Version``, whichever is later); an unsigned
    document below it is upgraded by the stamp (PDF 1.7), only a signed one is refused.
    ``certification`` is ``NOT_CERTIFIED`` (approval signature) or ``NO_CHANGES`` (the stamp is final).
    """

    name: str
    max_bytes: int
    page_size: tuple[float, float] | None = None
    page_size_tolerance: float = 3.0
    min_pdf_version: str | None = None
    max_pages: int = 2000
    min_stamp_size: float = 20.0
    max_stamp_size: float = 300.0
    certification: str = NOT_CERTIFIED

    @property
    def final(self) -> bool:
        return self.certification == NO_CHANGES


DEFAULT_PROFILE = ProfileRules(name="default", max_bytes=20 * 1024 * 1024)
CPNS_PROFILE = ProfileRules(
    name="cpns", max_bytes=800 * 1024, page_size=A4, page_size_tolerance=3.0, min_pdf_version="1.6",
    certification=NO_CHANGES,
)  # fmt: skip
PROFILES = {profile.name: profile for profile in (DEFAULT_PROFILE, CPNS_PROFILE)}


def _fits(width: float, height: float, size: tuple[float, float], tolerance: float) -> bool:
    expected_w, expected_h = size
    return (abs(width - expected_w) <= tolerance and abs(height - expected_h) <= tolerance) or (
        abs(width - expected_h) <= tolerance and abs(height - expected_w) <= tolerance
    )


def check_profile(info: DocumentInfo, rules: ProfileRules) -> None:
    """Raise the first rule of ``rules`` that ``info`` breaks.

    Old files are accepted when they are unsigned: the signer upgrades unsigned documents older
    than PDF 1.7 as part of the stamp (see ``issuer.signing.writer``), so the stamped file meets
    ``min_pdf_version``.  A signed document cannot be rewritten, so below it, it is refused.
    """
    check_size(info.size, rules.max_bytes)
    if rules.page_size is not None:
        for page in info.pages:
            if not _fits(page.width, page.height, rules.page_size, rules.page_size_tolerance):
                raise PageSizeNotAllowed(
                    f"Page {page.index + 1} measures {page.width / 72 * 25.4:.0f} x "
                    f"{page.height / 72 * 25.4:.0f} mm; the {rules.name} rules require "
                    f"{rules.page_size[0] / 72 * 25.4:.0f} x {rules.page_size[1] / 72 * 25.4:.0f} mm "
                    "(A4) for every page.",
                    extra={"page": page.index + 1, "profile": rules.name},
                )
    if (
        rules.min_pdf_version is not None
        and info.is_signed
        and version_tuple(info.pdf_version) < version_tuple(rules.min_pdf_version)
    ):
        raise PdfVersionTooOld(
            f"The PDF is version {info.pdf_version} and already signed, so it cannot be upgraded; the "
            f"{rules.name} rules require version {rules.min_pdf_version} or later. Export the document "
            "to PDF again with a current application and sign it again, or stamp it before signing.",
            extra={"pdf_version": info.pdf_version, "min_pdf_version": rules.min_pdf_version},
        )


def check_not_final(info: DocumentInfo) -> None:
    if info.forbids_changes:
        raise DocumentAlreadyFinal(
            "The PDF carries a certifying signature that allows no further changes, so a stamp "
            "cannot be added without breaking it. Stamp the document before it is certified."
        )
    if info.forbids_new_fields:
        raise DocumentCertified(
            "The PDF was certified by its author to allow only form filling and signing of its own "
            "signature fields; adding the e-Meterai would invalidate that certification. Stamp the "
            "document before it is certified, or have it certified with changes allowed."
        )


def check_placement(
    info: DocumentInfo, page_number: int, box: tuple[float, float, float, float], rules: ProfileRules | None = None
) -> Rect:
    """Validate a stamp position and return the widget rectangle in default user space.

    ``page_number`` is 1-based.  ``box`` is (llx, lly, urx, ury) in points with the origin at the
    bottom-left corner of the page's visible area as the viewer shows it (``/Rotate`` applied).
    """
    check_not_final(info)
    if not 1 <= page_number <= info.page_count:
        raise PageOutOfRange(
            f"Page {page_number} does not exist; the document has {info.page_count} page(s).",
            extra={"page": page_number, "page_count": info.page_count},
        )
    llx, lly, urx, ury = (float(v) for v in box)
    rules = rules or PROFILES["default"]
    width, height = urx - llx, ury - lly
    if not (width > 0 and height > 0):
        raise InvalidStampBox(
            "The stamp box must have its lower-left corner (llx, lly) below and to the left of its "
            "upper-right corner (urx, ury).",
            extra={"box": [llx, lly, urx, ury]},
        )
    if not (rules.min_stamp_size <= min(width, height) and max(width, height) <= rules.max_stamp_size):
        raise InvalidStampBox(
            f"The stamp box must be between {rules.min_stamp_size:.0f} and {rules.max_stamp_size:.0f} "
            f"points on each side; it is {width:.0f} x {height:.0f}.",
            extra={"box": [llx, lly, urx, ury]},
        )
    page = info.page(page_number)
    requested = Rect(llx, lly, urx, ury)
    if not Rect(0, 0, page.width, page.height).contains(requested):
        raise StampOutOfBounds(
            f"The stamp box ({llx:.0f}, {lly:.0f}, {urx:.0f}, {ury:.0f}) is not fully on page "
            f"{page_number}, which measures {page.width:.0f} x {page.height:.0f} points as displayed.",
            extra={"page": page_number, "page_width": page.width, "page_height": page.height},
        )
    user_rect = display_to_user(requested, page.visible, page.rotate)
    for signature in info.signatures:
        if signature.page_index == page.index and signature.rect is not None and signature.rect.overlaps(user_rect):
            raise StampOverlapsSignature(
                f"The stamp would cover the signature field '{signature.field_name}'. "
                "Choose a position next to the signature.",
                extra={"field": signature.field_name, "page": page_number},
            )
    return user_rect
