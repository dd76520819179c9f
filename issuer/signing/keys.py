"""Signing keys and certificates.

``KeyMaterial`` keeps the *parsed* private key for the life of the process: loading an RSA key
with OpenSSL 3 validates it and costs ~30 ms, which must not be paid per stamp.

* :func:`load_or_create_dev_keys` makes a development root CA and signing certificate on first
  use (files written 0600, safe against concurrent first runs).
* :func:`load_pkcs12` and :func:`load_pem` load production keys from files.
* :func:`load_pkcs11` is not implemented: a hardware key needs the ``python-pkcs11`` package and a
  raw-signature adapter behind :class:`KeyMaterial` (see ``docs/errors-issuer.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from issuer.errors import SigningUnavailable

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEV_ROOT_CERT = "dev-root-ca.pem"
DEV_ROOT_KEY = "dev-root-ca.key.pem"
DEV_SIGNING_CERT = "dev-signing.pem"
DEV_SIGNING_KEY = "dev-signing.key.pem"


@dataclass(frozen=True)
class KeyMaterial:
    """A loaded private key, its certificate and the chain up to (optionally including) the root."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    trust_roots: tuple[x509.Certificate, ...] = field(default=())

    def __post_init__(self) -> None:
        public = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        own = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public != own:
            raise ValueError("The private key does not belong to the signing certificate.")

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


def load_or_create_dev_keys(directory: Path) -> KeyMaterial:
    """Development keys in ``directory``, created on first call (never use in production)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = [directory / name for name in (DEV_ROOT_CERT, DEV_ROOT_KEY, DEV_SIGNING_CERT, DEV_SIGNING_KEY)]
    if not all(path.exists() for path in paths):
        with _directory_lock(directory):
            if not all(path.exists() for path in paths):  # another process may have won the race
                root_key, root_cert = make_root_ca("e-Meterai Development Root CA")
                key, cert = issue_certificate(root_key, root_cert, "e-Meterai Development Signing")
                _write_private(directory / DEV_ROOT_KEY, _pem_key(root_key))
                _write_private(directory / DEV_SIGNING_KEY, _pem_key(key))
                _write_private(directory / DEV_ROOT_CERT, _pem_cert(root_cert))
                _write_private(directory / DEV_SIGNING_CERT, _pem_cert(cert))
    material = load_pem(directory / DEV_SIGNING_KEY, directory / DEV_SIGNING_CERT, [directory / DEV_ROOT_CERT])
    return KeyMaterial(material.private_key, material.certificate, material.chain, trust_roots=material.chain)


def load_dev_root_ca(directory: Path) -> tuple[PrivateKey, x509.Certificate]:
    """The development root CA key and certificate (tests use it to issue extra certificates)."""
    key = serialization.load_pem_private_key((directory / DEV_ROOT_KEY).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((directory / DEV_ROOT_CERT).read_bytes())
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningUnavailable("The development root CA key has an unsupported type.")
    return key, cert


def _check_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise SigningUnavailable("The signing key must be an RSA or ECDSA key.")


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def load_pem(
    key_path: Path, cert_path: Path, chain_paths: Sequence[Path] = (), passphrase: bytes | None = None
) -> KeyMaterial:
    """Load a PEM private key, its certificate and the chain certificates (PEM, one or more each)."""
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=passphrase)
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        chain = tuple(c for path in chain_paths for c in x509.load_pem_x509_certificates(Path(path).read_bytes()))
    except (OSError, ValueError, TypeError) as exc:
        raise SigningUnavailable(
            "The signing key or certificate cannot be loaded.", extra={"reason": str(exc)}
        ) from None
    roots = tuple(c for c in chain if _self_signed(c))
    return KeyMaterial(_check_key(key), cert, chain, trust_roots=roots)


def load_pkcs12(path: Path, passphrase: bytes | str | None) -> KeyMaterial:
    """Load a PKCS#12 (.p12/.pfx) file holding the key, its certificate and the chain."""
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(Path(path).read_bytes(), secret)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningUnavailable("The PKCS#12 signing key cannot be loaded.", extra={"reason": str(exc)}) from None
    if key is None or cert is None:
        raise SigningUnavailable("The PKCS#12 file holds no private key with a certificate.")
    chain = tuple(extra or ())
    return KeyMaterial(_check_key(key), cert, chain, trust_roots=tuple(c for c in chain if _self_signed(c)))


def load_pkcs11(*_args: object, **_kwargs: object) -> KeyMaterial:
    """Hardware keys (PKCS#11) are not supported yet.

    Plan: python-pkcs11 session kept open per worker process, a ``RawSigner`` that signs the
    DER-encoded signed attributes with CKM_SHA256_RSA_PKCS, plugged into ``CmsTemplate``.
    """
    raise NotImplementedError("PKCS#11 signing keys are not supported yet; use load_pkcs12 or load_pem.")
