"""RFC 3161 time-stamping clients (for PAdES B-T signature time-stamps)."""

from __future__ import annotations

import base64
import secrets
import urllib.error
import urllib.request
from typing import Protocol

from asn1crypto import tsp

from issuer.errors import SigningUnavailable

_MAX_RESPONSE = 256 * 1024


class Timestamper(Protocol):
    """Returns the DER TimeStampToken (a CMS ContentInfo) for a SHA-256 message imprint."""

    #: bytes to reserve in the signature for the token (grows automatically when exceeded)
    reserve: int

    def timestamp(self, sha256_digest: bytes) -> bytes: ...


def timestamp_request(sha256_digest: bytes, nonce: int) -> bytes:
    return tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": sha256_digest},
            "nonce": nonce,
            "cert_req": True,
        }
    ).dump()


def token_from_response(response: bytes, sha256_digest: bytes, nonce: int) -> bytes:
    """Check a TimeStampResp against the request and return the token's DER."""
    try:
        parsed = tsp.TimeStampResp.load(response)
        status = parsed["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise SigningUnavailable(f"The time-stamping authority refused the request ({status}).")
        token = parsed["time_stamp_token"]
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if imprint["hashed_message"].native != sha256_digest or algorithm != "sha256":
            raise SigningUnavailable("The time-stamping authority answered for a different document.")
        if tst_info["nonce"].native != nonce:
            raise SigningUnavailable("The time-stamping authority answered with a wrong nonce.")
        return token.dump()
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningUnavailable(
            "The time-stamping authority sent an unreadable answer.", extra={"reason": str(exc)[:200]}
        ) from None


class HttpTimestamper:
    """RFC 3161 over HTTP(S) with the standard library (no extra dependency)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        username: str | None = None,
        password: str | None = None,
        reserve: int = 8192,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("The time-stamping URL must be http or https.")
        self.url = url
        self.timeout = timeout
        self.reserve = reserve
        self._headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
        if username is not None:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {basic}"

    def timestamp(self, sha256_digest: bytes) -> bytes:
        nonce = secrets.randbits(63)
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url, data=timestamp_request(sha256_digest, nonce), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                body = answer.read(_MAX_RESPONSE + 1)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SigningUnavailable(
                "The time-stamping authority cannot be reached; try again shortly.",
                extra={"reason": str(exc)[:200]},
            ) from None
        if len(body) > _MAX_RESPONSE:
            raise SigningUnavailable("The time-stamping authority sent an oversized answer.")
        return token_from_response(body, sha256_digest, nonce)
