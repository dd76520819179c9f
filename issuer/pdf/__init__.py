"""PDF inspection, profile rules and placement checks."""

from issuer.pdf.geometry import Rect
from issuer.pdf.inspect import DocumentInfo, EncryptionInfo, PageGeom, SignatureFieldInfo, inspect_document
from issuer.pdf.rules import (
    CERTIFICATION_LEVELS,
    CPNS_PROFILE,
    DEFAULT_PROFILE,
    NO_CHANGES,
    NOT_CERTIFIED,
    PROFILES,
    ProfileRules,
    check_not_final,
    check_placement,
    check_profile,
)

__all__ = [
    "CERTIFICATION_LEVELS",
    "CPNS_PROFILE",
    "DEFAULT_PROFILE",
    "NOT_CERTIFIED",
    "NO_CHANGES",
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
