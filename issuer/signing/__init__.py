"""PAdES signing of stamped documents and offline verification."""

from issuer.signing.engine import StampEngine, StampResult
from issuer.signing.hsm import Pkcs11Signer, TokenConfig, load_pkcs11
from issuer.signing.keys import (
    Certificates,
    KeyMaterial,
    create_dev_keys,
    load_or_create_dev_keys,
    load_pem,
    load_pkcs12,
)
from issuer.signing.timestamps import HttpTimestamper, Timestamper
from issuer.signing.verify import SignatureReport, VerificationReport, verify_pdf

__all__ = [
    "Certificates",
    "HttpTimestamper",
    "KeyMaterial",
    "Pkcs11Signer",
    "SignatureReport",
    "StampEngine",
    "StampResult",
    "Timestamper",
    "TokenConfig",
    "VerificationReport",
    "create_dev_keys",
    "load_or_create_dev_keys",
    "load_pem",
    "load_pkcs11",
    "load_pkcs12",
    "verify_pdf",
]
