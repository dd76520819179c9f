"""Signing with a key on a PKCS#11 token (an HSM; SoftHSM2 in tests and benchmarks), via python-pkcs11.

The fast engine builds the CMS container itself; only the raw signature over the DER of the signed
attributes comes from the token (``CKM_SHA256_RSA_PKCS`` for RSA, ``CKM_ECDSA_SHA256`` for EC keys,
whose raw ``r || s`` is re-encoded as DER). A token without the hashing mechanism (SoftHSM 2.6 has
no ``CKM_ECDSA_SHA256``) gets the SHA-256 digest computed here and signs it with ``CKM_ECDSA`` /
``CKM_RSA_PKCS`` (over the DigestInfo): the same signature. The private key never leaves the token.

One logged-in session per process, opened on first use and shared by the process's threads under a
lock (a PKCS#11 session must not run two operations at once). When the token answers that the session
is gone (token reset, HSM fail-over, logout) the session is opened again once and the signature
retried; any other failure is ``signing_unavailable``. The PIN is read from the settings, never
logged, and is not kept in error messages.

A process that forks after opening a session must not use it in the child; the engine is built
lazily in each worker process (``issuer.engine.get_engine``), so Celery's prefork children each open
their own.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from issuer.signing.keys import Certificates, KeyMaterial, certificates_from, signature_matches, unavailable

# DER DigestInfo header for SHA-256 (RFC 8017, 9.2 note 1): what CKM_RSA_PKCS signs after it
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_libraries: dict[str, object] = {}
_libraries_lock = threading.Lock()


@dataclass(frozen=True)
class TokenConfig:
    module: str  # path of the PKCS#11 library (.so)
    token_label: str
    key_label: str
    pin: str

    def __repr__(self) -> str:  # the PIN stays out of logs and tracebacks
        return f"TokenConfig(module={self.module!r}, token_label={self.token_label!r}, key_label={self.key_label!r})"


def _library(module: str):
    """The loaded PKCS#11 library (one per path and process: C_Initialize may run only once)."""
    import pkcs11

    with _libraries_lock:
        lib = _libraries.get(module)
        if lib is None:
            lib = _libraries[module] = pkcs11.lib(module)
        return lib


def _token(config: TokenConfig):
    import pkcs11

    if not os.path.exists(config.module):  # noqa: PTH110 - the path is a setting, checked before dlopen
        raise unavailable("The PKCS#11 module (ISSUER_PKCS11_MODULE) does not exist.")
    try:
        return _library(config.module).get_token(token_label=config.token_label)
    except pkcs11.exceptions.NoSuchToken as exc:
        raise unavailable("No PKCS#11 token has the label ISSUER_PKCS11_TOKEN_LABEL.", exc) from None
    except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
        raise unavailable("The PKCS#11 module cannot be used.", exc) from None


def token_certificate(config: TokenConfig) -> x509.Certificate:
    """The X.509 certificate stored on the token under the key's label (a public object: no login)."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    token = _token(config)
    try:
        with token.open() as session:
            found = list(
                session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: config.key_label})
            )
            if len(found) != 1:
                raise unavailable(
                    "The token holds no single certificate labelled ISSUER_PKCS11_KEY_LABEL; "
                    "store it there or set ISSUER_SIGNING_CERT."
                )
            der = bytes(found[0][Attribute.VALUE])
    except pkcs11.exceptions.PKCS11Error as exc:
        raise unavailable("The certificate cannot be read from the PKCS#11 token.", exc) from None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise unavailable("The certificate on the PKCS#11 token is not a valid X.509 certificate.", exc) from None


class Pkcs11Signer:
    """A private key on a PKCS#11 token; ``sign`` returns what :class:`issuer.signing.keys.Signer` promises."""

    def __init__(self, config: TokenConfig, certificate: x509.Certificate) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._session = None
        self._key = None
        self._pid = 0
        self._hash_on_token = True
        self._public = certificate.public_key()
        if isinstance(self._public, rsa.RSAPublicKey):
            self.algorithm = "rsa"
        elif isinstance(self._public, ec.EllipticCurvePublicKey):
            self.algorithm = "ecdsa"
        else:
            raise unavailable("The signing certificate's key must be RSA or ECDSA.")
        self.key_size = self._public.key_size
        self.sessions_opened = 0
        with self._lock:
            self._open()

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self._public

    def _open(self) -> None:
        import pkcs11
        from pkcs11 import KeyType, Mechanism, ObjectClass

        self._close()
        token = _token(self._config)
        try:
            try:
                session = token.open(user_pin=self._config.pin)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # the login is per process and token: another session of this process holds it
                session = token.open()
        except pkcs11.exceptions.PinIncorrect:
            raise unavailable("The PKCS#11 PIN (ISSUER_PKCS11_PIN) is not correct.") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise unavailable("No session can be opened on the PKCS#11 token.", exc) from None
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self._config.key_label)
        except pkcs11.exceptions.NoSuchKey:
            session.close()
            raise unavailable("The token has no private key labelled ISSUER_PKCS11_KEY_LABEL.") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            session.close()
            raise unavailable("The private key cannot be found on the PKCS#11 token.", exc) from None
        expected = KeyType.RSA if self.algorithm == "rsa" else KeyType.EC
        if key.key_type != expected:
            session.close()
            raise unavailable("The key on the token is not of the signing certificate's kind.")
        try:
            available = set(token.slot.get_mechanisms())
        except pkcs11.exceptions.PKCS11Error:
            available = set()
        hashing = Mechanism.SHA256_RSA_PKCS if self.algorithm == "rsa" else Mechanism.ECDSA_SHA256
        self._hash_on_token = hashing in available or not available
        self._session, self._key, self._pid = session, key, os.getpid()
        self.sessions_opened += 1

    def _close(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None and self._pid == os.getpid():
            try:
                session.close()
            except Exception:  # noqa: BLE001, S110 - a dead session cannot be closed more cleanly
                pass

    def _raw_sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.util.ec import encode_ecdsa_signature

        if self.algorithm == "rsa":
            if self._hash_on_token:
                return bytes(self._key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
            return bytes(self._key.sign(digest_info, mechanism=Mechanism.RSA_PKCS))
        if self._hash_on_token:
            raw = self._key.sign(data, mechanism=Mechanism.ECDSA_SHA256)
        else:
            raw = self._key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
        return encode_ecdsa_signature(bytes(raw))

    def sign(self, data: bytes) -> bytes:
        import pkcs11

        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._open()
            try:
                return self._raw_sign(data)
            except pkcs11.exceptions.PKCS11Error as first:
                # the session (or the token behind it) went away: open a new one and try once more
                try:
                    self._open()
                    return self._raw_sign(data)
                except pkcs11.exceptions.PKCS11Error as exc:
                    self._close()
                    raise unavailable("The PKCS#11 token did not sign.", exc) from first

    def close(self) -> None:
        with self._lock:
            self._close()


def load_pkcs11(config: TokenConfig, certificates: Certificates | None = None) -> KeyMaterial:
    """The token's key with its certificate: ``certificates`` from files, or else read from the token.

    The key is checked against the certificate with one test signature.
    """
    if certificates is None:
        certificates = certificates_from(token_certificate(config), ())
    signer = Pkcs11Signer(config, certificates.certificate)
    if not signature_matches(certificates.certificate, signer):
        signer.close()
        raise unavailable("The key on the PKCS#11 token does not belong to the signing certificate.")
    return KeyMaterial(signer, certificates.certificate, certificates.chain, certificates.trust_roots)
