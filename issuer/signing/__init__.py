"""PAdES signing of stamped documents and offline verification."""

from issuer.signing.engine import StampEngine, StampResult
from issuer.signing.keys import KeyMaterial, load_or_create_dev_keys, load_pem, load_pkcs11, load_pkcs12
from issuer.signing.timestamps import HttpTimestamper, Timestamper
from issuer.signing.verify import SignatureReport, VerificationReport, verify_pdf

__all__ = [
    "HttpTimestamper",
    "KeyMaterial",
    "SignatureReport",
    "StampEngine",
    "StampResult",
    "Timestamper",
    "VerificationReport",
    "load_or_create_dev_keys",
    "load_pem",
    "load_pkcs11",
    "load_pkcs12",
    "verify_pdf",
]
