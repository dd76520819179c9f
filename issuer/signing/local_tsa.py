"""A small local RFC 3161 time-stamping authority (HTTP, asn1crypto + cryptography).

For development, the demo (``make demo`` runs ``manage.py local_tsa``) and the tests: it makes
demo stamps PAdES B-T, with a TSA certificate issued by the development root, so a verifier that
trusts that root (see docs/issuer.md, "Trusting the issuer's root") trusts the time stamps too.
Never a production TSA: its key lives in a file, its clock is the machine's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class TimeStampAuthority:
    """Answers TimeStampReq with a signed TimeStampToken (sha256WithRSA, ESS signing-cert-v2)."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        self.key = key
        self.cert_der = certificate.public_bytes(serialization.Encoding.DER)
        self.cert = asn1_x509.Certificate.load(self.cert_der)
        self._serials = itertools.count(1)
        self.requests = 0

    def respond(self, request_der: bytes) -> bytes:
        self.requests += 1
        request = tsp.TimeStampReq.load(request_der)
        tst_info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.55555.1.1",
                "message_imprint": request["message_imprint"],
                "serial_number": next(self._serials),
                "gen_time": dt.datetime.now(dt.UTC),
                "accuracy": {"seconds": 1},
                "nonce": request["nonce"],
            }
        ).dump()
        ess = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "cert_hash": hashlib.sha256(self.cert_der).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName({"directory_name": self.cert.issuer})],
                            "serial_number": self.cert.serial_number,
                        },
                    }
                ]
            }
        )
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]},
                {"type": "signing_certificate_v2", "values": [ess]},
            ]
        )
        signature = self.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_info)},
                "certificates": [self.cert],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": {
                            "issuer_and_serial_number": {
                                "issuer": self.cert.issuer,
                                "serial_number": self.cert.serial_number,
                            }
                        },
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": {"algorithm": "sha256_rsa"},
                        "signature": signature,
                    }
                ],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


class TsaServer:
    """Serves a :class:`TimeStampAuthority` on 127.0.0.1 in a background thread."""

    def __init__(self, authority: TimeStampAuthority, port: int = 0) -> None:
        self.authority = authority

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                answer = authority.respond(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/tsa"

    def __enter__(self) -> TsaServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
