"""The per-process stamping engine, built once from settings.

Loading and checking a private key costs tens of milliseconds and the engine caches a CMS
template per key, so every worker process keeps one :class:`StampEngine`.  The key material never
leaves issuer code: callers get stamped bytes, never the key.

Key sources, first match wins:

1. ``ISSUER_SIGNING_PKCS12`` (+ ``ISSUER_SIGNING_PKCS12_PASSWORD``);
2. ``ISSUER_SIGNING_KEY`` + ``ISSUER_SIGNING_CERT`` (+ ``ISSUER_SIGNING_CHAIN``,
   ``ISSUER_SIGNING_KEY_PASSWORD``), PEM;
3. development keys under ``ISSUER_KEY_DIR``, created on first use.

PKCS#11 (hardware keys) is not implemented; see ``docs/issuer.md``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509
from django.conf import settings

from issuer.errors import SigningUnavailable
from issuer.signing import HttpTimestamper, KeyMaterial, StampEngine, load_or_create_dev_keys, load_pem, load_pkcs12

_lock = threading.Lock()
_engine: StampEngine | None = None
_trust_roots: tuple[x509.Certificate, ...] | None = None


def load_key_material() -> KeyMaterial:
    """The signing key configured in settings (raises ``SigningUnavailable`` when it cannot load)."""
    try:
        return _load_key_material()
    except ValueError as exc:  # e.g. the key does not belong to the certificate
        raise SigningUnavailable("The signing key cannot be used.", extra={"reason": str(exc)[:200]}) from None


def _load_key_material() -> KeyMaterial:
    if settings.ISSUER_SIGNING_PKCS12:
        return load_pkcs12(Path(settings.ISSUER_SIGNING_PKCS12), settings.ISSUER_SIGNING_PKCS12_PASSWORD or None)
    if settings.ISSUER_SIGNING_KEY or settings.ISSUER_SIGNING_CERT:
        if not (settings.ISSUER_SIGNING_KEY and settings.ISSUER_SIGNING_CERT):
            raise SigningUnavailable("Both ISSUER_SIGNING_KEY and ISSUER_SIGNING_CERT must be set.")
        passphrase = settings.ISSUER_SIGNING_KEY_PASSWORD.encode() if settings.ISSUER_SIGNING_KEY_PASSWORD else None
        return load_pem(
            Path(settings.ISSUER_SIGNING_KEY),
            Path(settings.ISSUER_SIGNING_CERT),
            [Path(p) for p in settings.ISSUER_SIGNING_CHAIN],
            passphrase,
        )
    return load_or_create_dev_keys(Path(settings.ISSUER_KEY_DIR))


def _build() -> StampEngine:
    keys = load_key_material()
    timestamper = None
    if settings.ISSUER_TSA_URL:
        timestamper = HttpTimestamper(
            settings.ISSUER_TSA_URL,
            timeout=settings.ISSUER_TSA_TIMEOUT,
            username=settings.ISSUER_TSA_USERNAME or None,
            password=settings.ISSUER_TSA_PASSWORD or None,
        )
    return StampEngine(keys, settings.VERIFY_BASE_URL, timestamper)


def get_engine() -> StampEngine:
    """The process's engine, built on first use (thread-safe)."""
    global _engine
    engine = _engine
    if engine is None:
        with _lock:
            if _engine is None:
                _engine = _build()
            engine = _engine
    return engine


def trust_roots() -> tuple[x509.Certificate, ...]:
    """Roots a stamp's signature must chain to: the signing key's roots plus ISSUER_TRUST_ROOTS."""
    global _trust_roots
    roots = _trust_roots
    if roots is None:
        extra: list[x509.Certificate] = []
        for path in settings.ISSUER_TRUST_ROOTS:
            try:
                extra.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
            except (OSError, ValueError) as exc:
                raise SigningUnavailable(
                    "A configured trust root cannot be loaded.", extra={"reason": str(exc)[:200]}
                ) from None
        keys = get_engine().keys
        own = keys.trust_roots or (keys.chain[-1:] if keys.chain else (keys.certificate,))
        roots = _trust_roots = tuple(own) + tuple(extra)
    return roots


def signing_roots() -> tuple[x509.Certificate, ...]:
    """The root(s) the signing key's certificate chains to: what the issuer publishes for verifiers
    to trust (not the extra ``ISSUER_TRUST_ROOTS``, which are other parties')."""
    keys = get_engine().keys
    return tuple(keys.trust_roots or (keys.chain[-1:] if keys.chain else (keys.certificate,)))


def reset_engine() -> None:
    """Forget the cached engine (after a key rotation, or in tests that change the settings)."""
    global _engine, _trust_roots
    with _lock:
        _engine = None
        _trust_roots = None
