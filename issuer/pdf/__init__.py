"""PDF inspection, profile rules and placement checks."""

from issuer.pdf.geometry import Rect
from issuer.pdf.inspect import DocumentInfo, EncryptionInfo, PageGeom, SignatureFieldInfo, inspect_document
from issuer.pdf.rules import (
    CPNS_PROFILE,
    DEFAULT_PROFILE,
    PROFILES,
    ProfileRules,
    check_not_final,
    check_placement,
    check_profile,
)

__all__ = [
    "CPNS_PROFILE",
    "DEFAULT_PROFILE",
    "PROFILES",
    "DocumentInfo",
    "EncryptionInfo",
    "PageGeom",
    "ProfileRules",
    "Rect",
    "SignatureFieldInfo",
    "check_not_final",
    "check_placement",
    "check_profile",
    "inspect_document",
]
