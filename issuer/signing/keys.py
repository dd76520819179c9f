"""Signing keys and certificates, kept in two halves loaded separately.

* :class:`Certificates`: the signing certificate, its chain and the trust roots. This is all that
  verification (and the stamp's appearance) needs; web processes load nothing else
  (:func:`load_certificates_pem`, :func:`load_dev_certificates`).
* a :class:`Signer`: the private key (:class:`SoftwareSigner`, parsed once per process: loading
  an RSA key with OpenSSL 3 validates it and costs ~30 ms) or a PKCS#11 token's key
  (:class:`issuer.signing.pkcs11.Pkcs11Signer`). Only stamping workers load one.

:class:`KeyMaterial` pairs the two for the stamping engine.

* :func:`create_dev_keys` makes a development root CA and signing certificate when asked (the
  ``dev_keys`` command, the demo and test setup), never as a side effect of a request. The root
  CA's private key is not kept beside the signing key: it is dropped after issuing unless a
  separate ``ca_directory`` is named (tests use it to issue extra certificates).
* :func:`load_pkcs12` and :func:`load_pem` load file keys (development, or production only with
  ``ISSUER_SIGNING_ALLOW_FILE_KEY``).

Errors never carry a file path or a library message to the caller: the reason is logged
(``issuer.signing.keys``) and the refusal says only what to do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from issuer.errors import SigningUnavailable

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEV_ROOT_CERT = "dev-root-ca.pem"
DEV_ROOT_KEY = "dev-root-ca.key.pem"
DEV_SIGNING_CERT = "dev-signing.pem"
DEV_SIGNING_KEY = "dev-signing.key.pem"


logger = logging.getLogger(__name__)


def unavailable(message: str, exc: BaseException | None = None) -> SigningUnavailable:
    """A ``SigningUnavailable`` for ``message``; the cause (paths, library text) goes to the log only."""
    reason = f"{type(exc).__name__}: {exc}"[:300] if exc is not None else ""
    logger.error("signing key material unavailable: %s", message, extra={"reason": reason})
    return SigningUnavailable(message)


@runtime_checkable
class Signer(Protocol):
    """What the CMS template needs from a private key: its kind, its size and a raw signature.

    ``sign`` returns the signature over SHA-256 of ``data``: PKCS#1 v1.5 for RSA, DER-encoded
    ECDSA for EC keys.
    """

    algorithm: str  # "rsa" or "ecdsa"
    key_size: int  # bits

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


class SoftwareSigner:
    """A private key held in this process's memory (PEM, PKCS#12 or development files)."""

    def __init__(self, private_key: PrivateKey) -> None:
        self.private_key = _check_key(private_key)
        self.algorithm = "rsa" if isinstance(private_key, rsa.RSAPrivateKey) else "ecdsa"
        self.key_size = private_key.key_size

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def signature_matches(certificate: x509.Certificate, signer: Signer) -> bool:
    """True when ``signer`` makes signatures that ``certificate``'s public key accepts (one test signature)."""
    probe = b"e-Meterai key check"
    public = certificate.public_key()
    try:
        signature = signer.sign(probe)
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, probe, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, probe, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Certificates:
    """The signing certificate, its chain and the roots it is trusted under (no private key)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    trust_roots: tuple[x509.Certificate, ...] = ()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def chain_der(self) -> tuple[bytes, ...]:
        return tuple(cert.public_bytes(serialization.Encoding.DER) for cert in self.chain)

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The trust roots, or else the top of the chain, or else the certificate itself."""
        return self.trust_roots or (self.chain[-1:] if self.chain else (self.certificate,))


def certificates_from(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> Certificates:
    chain = tuple(chain)
    return Certificates(certificate, chain, tuple(c for c in chain if _self_signed(c)))


@dataclass(frozen=True)
class KeyMaterial:
    """A signer (a private key in memory, or a key on a token), its certificate and the chain.

    ``signer`` may be given as a plain ``cryptography`` private key; it is wrapped in a
    :class:`SoftwareSigner`.
    """

    signer: Signer
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    trust_roots: tuple[x509.Certificate, ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.signer, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            object.__setattr__(self, "signer", SoftwareSigner(self.signer))
        if _spki(self.certificate.public_key()) != _spki(self.signer.public_key()):
            raise ValueError("The private key does not belong to the signing certificate.")

    @property
    def private_key(self) -> PrivateKey:
        """The in-memory key of a file signer (a token's key never leaves the token)."""
        if not isinstance(self.signer, SoftwareSigner):
            raise AttributeError("the signing key is on a PKCS#11 token")
        return self.signer.private_key

    @property
    def certificates(self) -> Certificates:
        return Certificates(self.certificate, self.chain, self.trust_roots)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def chain_der(self) -> tuple[bytes, ...]:
        return tuple(cert.public_bytes(serialization.Encoding.DER) for cert in self.chain)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "e-Meterai Development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_id(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def make_root_ca(common_name: str, *, years: int = 20) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(_key_id(key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_certificate(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    key: PrivateKey | None = None,
    years: int = 5,
    timestamping: bool = False,
) -> tuple[PrivateKey, x509.Certificate]:
    """An end-entity certificate for document signing (or, with ``timestamping``, for a TSA)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_id(key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if timestamping:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    with open(directory / ".keys.lock", "a+b") as lock:  # noqa: PTH123
        os.chmod(lock.name, 0o600)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _dev_files_present(directory: Path) -> bool:
    return all((directory / name).exists() for name in (DEV_ROOT_CERT, DEV_SIGNING_CERT, DEV_SIGNING_KEY))


def create_dev_keys(directory: Path, *, ca_directory: Path | None = None) -> bool:
    """Make development keys in ``directory`` unless they exist; True when they were made now.

    ``directory`` gets the signing key, its certificate and the root CA's certificate (files 0600,
    safe against concurrent first runs). The root CA's private key is written to ``ca_directory``
    when one is named (never the same directory), else it is not kept at all. Never for production.
    """
    directory = Path(directory)
    if ca_directory is not None and Path(ca_directory).resolve() == directory.resolve():
        raise ValueError("the development root CA key must not sit beside the signing key")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _dev_files_present(directory):
        return False
    with _directory_lock(directory):
        if _dev_files_present(directory):  # another process may have won the race
            return False
        root_key, root_cert = make_root_ca("e-Meterai Development Root CA")
        key, cert = issue_certificate(root_key, root_cert, "e-Meterai Development Signing")
        if ca_directory is not None:
            ca_directory = Path(ca_directory)
            ca_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(ca_directory / DEV_ROOT_KEY, _pem_key(root_key))
            _write_private(ca_directory / DEV_ROOT_CERT, _pem_cert(root_cert))
        _write_private(directory / DEV_ROOT_CERT, _pem_cert(root_cert))
        _write_private(directory / DEV_SIGNING_CERT, _pem_cert(cert))
        _write_private(directory / DEV_SIGNING_KEY, _pem_key(key))  # last: its presence means "complete"
    return True


def load_dev_certificates(directory: Path) -> Certificates:
    """The development signing certificate and root, without the private key."""
    directory = Path(directory)
    try:
        cert = x509.load_pem_x509_certificate((directory / DEV_SIGNING_CERT).read_bytes())
        root = x509.load_pem_x509_certificate((directory / DEV_ROOT_CERT).read_bytes())
    except (OSError, ValueError) as exc:
        raise unavailable(
            "The development certificates are missing; create them with `manage.py dev_keys`.", exc
        ) from None
    return Certificates(cert, (root,), (root,))


def load_dev_keys(directory: Path) -> KeyMaterial:
    """The development signing key with its certificates (stamping workers only)."""
    directory = Path(directory)
    if not (directory / DEV_SIGNING_KEY).exists():
        raise unavailable("The development signing key is missing; create it with `manage.py dev_keys`.")
    material = load_pem(directory / DEV_SIGNING_KEY, directory / DEV_SIGNING_CERT, [directory / DEV_ROOT_CERT])
    return KeyMaterial(material.signer, material.certificate, material.chain, trust_roots=material.chain)


def load_or_create_dev_keys(directory: Path, *, ca_directory: Path | None = None) -> KeyMaterial:
    """Development keys in ``directory``, made now if missing (tests, benchmarks; never production)."""
    create_dev_keys(directory, ca_directory=ca_directory)
    return load_dev_keys(directory)


def load_dev_root_ca(ca_directory: Path) -> tuple[PrivateKey, x509.Certificate]:
    """The development root CA key and certificate kept in ``ca_directory`` (tests issue extra certificates)."""
    key = serialization.load_pem_private_key((ca_directory / DEV_ROOT_KEY).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((ca_directory / DEV_ROOT_CERT).read_bytes())
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningUnavailable("The development root CA key has an unsupported type.")
    return key, cert


def _check_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise SigningUnavailable("The signing key must be an RSA or ECDSA key.")


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def load_certificates_pem(cert_path: Path, chain_paths: Sequence[Path] = ()) -> Certificates:
    """The signing certificate and its chain from PEM files (no private key is read)."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        chain = tuple(c for path in chain_paths for c in x509.load_pem_x509_certificates(Path(path).read_bytes()))
    except (OSError, ValueError, TypeError) as exc:
        raise unavailable("The signing certificate or its chain cannot be loaded.", exc) from None
    return certificates_from(cert, chain)


def load_pem(
    key_path: Path, cert_path: Path, chain_paths: Sequence[Path] = (), passphrase: bytes | None = None
) -> KeyMaterial:
    """Load a PEM private key, its certificate and the chain certificates (PEM, one or more each)."""
    certificates = load_certificates_pem(cert_path, chain_paths)
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise unavailable("The signing key cannot be loaded.", exc) from None
    return KeyMaterial(_check_key(key), certificates.certificate, certificates.chain, certificates.trust_roots)


def load_pkcs12(path: Path, passphrase: bytes | str | None) -> KeyMaterial:
    """Load a PKCS#12 (.p12/.pfx) file holding the key, its certificate and the chain."""
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(Path(path).read_bytes(), secret)
    except (OSError, ValueError, TypeError) as exc:
        raise unavailable("The PKCS#12 signing key cannot be loaded.", exc) from None
    if key is None or cert is None:
        raise unavailable("The PKCS#12 file holds no private key with a certificate.")
    certificates = certificates_from(cert, extra or ())
    return KeyMaterial(_check_key(key), cert, certificates.chain, certificates.trust_roots)
