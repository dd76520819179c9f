"""CMS SignedData for PAdES B-B / B-T, built from a per-signer template.

In a PAdES baseline container only the message digest (inside the signed attributes) and the
signature value change from one document to the next.  :class:`CmsTemplate` encodes everything
else once with asn1crypto - certificates, signer identifier, algorithm identifiers, the
content-type and ESS signing-certificate-v2 attributes - and per document only splices the
32-byte digest into the signed attributes, has them signed by the key's signer (a key in memory or
a PKCS#11 token: :class:`issuer.signing.keys.Signer`) and wraps the
result with freshly computed DER lengths (so variable-length ECDSA signatures and timestamp tokens
fit without re-encoding anything else).

No signing-time attribute is included: PAdES puts the claimed signing time in the signature
dictionary's ``/M`` entry.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509

from issuer.signing.der import CONTEXT_0, CONTEXT_1, OCTET_STRING, SEQUENCE, SET, tlv
from issuer.signing.keys import KeyMaterial

SIGNATURE_TIMESTAMP_OID = "1.2.840.113549.1.9.16.2.14"
_SHA256_ALGORITHM = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()


class CmsTemplate:
    """Pre-encoded CMS pieces for one signing key; thread-safe and reusable across documents."""

    def __init__(self, keys: KeyMaterial) -> None:
        self._signer = keys.signer
        cert = asn1_x509.Certificate.load(keys.certificate_der)
        chain = [asn1_x509.Certificate.load(der) for der in keys.chain_der]
        self._digest_placeholder = secrets.token_bytes(32)
        ess = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "cert_hash": hashlib.sha256(keys.certificate_der).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName({"directory_name": cert.issuer})],
                            "serial_number": cert.serial_number,
                        },
                    }
                ]
            }
        )
        attributes = [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}).dump(),
            cms.CMSAttribute({"type": "message_digest", "values": [self._digest_placeholder]}).dump(),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}).dump(),
        ]
        signed_attrs = tlv(SET, *sorted(attributes))  # DER orders SET OF by encoding
        split = signed_attrs.index(self._digest_placeholder)
        self._attrs_head = signed_attrs[:split]
        self._attrs_tail = signed_attrs[split + 32 :]

        if self._signer.algorithm == "rsa":
            signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()})
        elif self._signer.algorithm == "ecdsa":
            signature_algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
        else:  # pragma: no cover - KeyMaterial only admits RSA and EC keys
            raise TypeError("unsupported key type")

        sid = cms.SignerIdentifier(
            {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}
        )
        self._signer_info_head = core.Integer(1).dump() + sid.dump() + _SHA256_ALGORITHM
        self._signature_algorithm = signature_algorithm.dump()
        certificates = tlv(CONTEXT_0, *sorted([cert.dump(), *(c.dump() for c in chain)]))  # DER SET OF order
        self._signed_data_head = (
            core.Integer(1).dump()
            + tlv(SET, _SHA256_ALGORITHM)
            + cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
            + certificates
        )
        self._content_info_head = cms.ContentType("signed_data").dump()
        key_bytes = (self._signer.key_size + 7) // 8
        self.max_signature_size = key_bytes + 16  # ECDSA DER adds up to ~9 bytes; RSA is exact
        self.size_without_timestamp = len(self.assemble(b"\0" * self.max_signature_size, b"\0" * 32, None))

    def signed_attributes(self, document_digest: bytes) -> bytes:
        """DER of the signed attributes (tagged as SET OF, i.e. what gets signed)."""
        return self._attrs_head + document_digest + self._attrs_tail

    def sign(self, signed_attributes: bytes) -> bytes:
        return self._signer.sign(signed_attributes)

    def assemble(self, signature: bytes, document_digest: bytes, timestamp_token: bytes | None) -> bytes:
        """The complete DER ``ContentInfo`` for one document."""
        signed_attrs = self.signed_attributes(document_digest)
        unsigned = b""
        if timestamp_token is not None:
            attribute = tlv(SEQUENCE, core.ObjectIdentifier(SIGNATURE_TIMESTAMP_OID).dump(), tlv(SET, timestamp_token))
            unsigned = tlv(CONTEXT_1, attribute)
        signer_info = tlv(
            SEQUENCE,
            self._signer_info_head,
            bytes((CONTEXT_0,)) + signed_attrs[1:],  # [0] IMPLICIT SET OF Attribute
            self._signature_algorithm,
            tlv(OCTET_STRING, signature),
            unsigned,
        )
        signed_data = tlv(SEQUENCE, self._signed_data_head, tlv(SET, signer_info))
        return tlv(SEQUENCE, self._content_info_head, tlv(CONTEXT_0, signed_data))

    def build(self, document_digest: bytes, timestamp: Callable[[bytes], bytes] | None = None) -> bytes:
        """Sign ``document_digest`` (SHA-256 of the byte ranges) and return the CMS DER.

        ``timestamp`` receives the SHA-256 of the signature value and returns a DER
        TimeStampToken, which goes in as the signature-time-stamp unsigned attribute (PAdES B-T).
        """
        signature = self.sign(self.signed_attributes(document_digest))
        token = timestamp(hashlib.sha256(signature).digest()) if timestamp is not None else None
        return self.assemble(signature, document_digest, token)
