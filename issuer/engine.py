"""The per-process stamping engine and the verification certificates, built once from settings.

Key material comes in two halves, loaded separately:

* :func:`certificates` / :func:`trust_roots`: the signing certificate, its chain and the roots a
  stamp must chain to. Verification (the public web endpoints) needs only these and never loads a
  private key, nor opens a PKCS#11 session when ``ISSUER_SIGNING_CERT`` is set.
* :func:`get_engine`: the :class:`StampEngine` with its signer, built on the first stamp of a
  process (stamping workers, the ``stamp`` command). Loading and checking a key costs tens of
  milliseconds and the engine caches a CMS template per key. The key never leaves issuer code.

Signer sources, first match wins:

1. ``ISSUER_PKCS11_MODULE`` (+ ``ISSUER_PKCS11_TOKEN_LABEL``, ``ISSUER_PKCS11_KEY_LABEL``,
   ``ISSUER_PKCS11_PIN``): a key on a token; the certificate from ``ISSUER_SIGNING_CERT`` (+
   ``ISSUER_SIGNING_CHAIN``) or, when unset, the token's certificate under the key's label;
2. ``ISSUER_SIGNING_PKCS12`` (+ ``ISSUER_SIGNING_PKCS12_PASSWORD``); verification needs
   ``ISSUER_SIGNING_CERT`` (+ chain) beside it, so that web processes never open the key file;
3. ``ISSUER_SIGNING_KEY`` + ``ISSUER_SIGNING_CERT`` (+ ``ISSUER_SIGNING_CHAIN``,
   ``ISSUER_SIGNING_KEY_PASSWORD``), PEM;
4. with ``ISSUER_DEV_KEYS`` (development and tests only), the development keys under
   ``ISSUER_KEY_DIR``, made beforehand by ``manage.py dev_keys`` (never by a request).

Anything else is ``signing_unavailable``; the reason (paths, library messages) is logged, never
returned to the caller.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509
from django.conf import settings

from issuer.signing import HttpTimestamper, KeyMaterial, StampEngine, load_pem, load_pkcs12
from issuer.signing.hsm import TokenConfig, load_pkcs11, token_certificate
from issuer.signing.keys import (
    Certificates,
    certificates_from,
    load_certificates_pem,
    load_dev_certificates,
    load_dev_keys,
    unavailable,
)

_lock = threading.Lock()
_engine: StampEngine | None = None
_certificates: Certificates | None = None
_trust_roots: tuple[x509.Certificate, ...] | None = None


def _token_config() -> TokenConfig:
    missing = [
        name
        for name in ("ISSUER_PKCS11_TOKEN_LABEL", "ISSUER_PKCS11_KEY_LABEL", "ISSUER_PKCS11_PIN")
        if not getattr(settings, name)
    ]
    if missing:
        raise unavailable(f"PKCS#11 signing needs {', '.join(missing)} beside ISSUER_PKCS11_MODULE.")
    return TokenConfig(
        module=settings.ISSUER_PKCS11_MODULE,
        token_label=settings.ISSUER_PKCS11_TOKEN_LABEL,
        key_label=settings.ISSUER_PKCS11_KEY_LABEL,
        pin=settings.ISSUER_PKCS11_PIN,
    )


def _configured_certificates() -> Certificates | None:
    if settings.ISSUER_SIGNING_CERT:
        return load_certificates_pem(
            Path(settings.ISSUER_SIGNING_CERT), [Path(p) for p in settings.ISSUER_SIGNING_CHAIN]
        )
    return None


def _load_certificates() -> Certificates:
    if settings.ISSUER_PKCS11_MODULE:
        configured = _configured_certificates()
        if configured is not None:
            return configured
        try:
            chain = [c for path in settings.ISSUER_SIGNING_CHAIN for c in x509.load_pem_x509_certificates(
                Path(path).read_bytes()
            )]  # fmt: skip
        except (OSError, ValueError) as exc:
            raise unavailable("The signing certificate's chain (ISSUER_SIGNING_CHAIN) cannot be loaded.", exc) from None
        return certificates_from(token_certificate(_token_config()), chain)
    if settings.ISSUER_SIGNING_PKCS12:
        configured = _configured_certificates()
        if configured is None:
            raise unavailable(
                "With ISSUER_SIGNING_PKCS12, set ISSUER_SIGNING_CERT (and ISSUER_SIGNING_CHAIN) so that "
                "verification does not open the key file."
            )
        return configured
    if settings.ISSUER_SIGNING_KEY or settings.ISSUER_SIGNING_CERT:
        if not (settings.ISSUER_SIGNING_KEY and settings.ISSUER_SIGNING_CERT):
            raise unavailable("Both ISSUER_SIGNING_KEY and ISSUER_SIGNING_CERT must be set.")
        return _configured_certificates()  # type: ignore[return-value]
    if settings.ISSUER_DEV_KEYS:
        return load_dev_certificates(Path(settings.ISSUER_KEY_DIR))
    raise unavailable("No signing key is configured (ISSUER_PKCS11_MODULE, or a key file where allowed).")


def certificates() -> Certificates:
    """The signing certificate, chain and roots (no private key is loaded; cached per process)."""
    global _certificates
    loaded = _certificates
    if loaded is None:
        with _lock:
            if _certificates is None:
                _certificates = _load_certificates()
            loaded = _certificates
    return loaded


def load_key_material() -> KeyMaterial:
    """The signing key configured in settings (raises ``SigningUnavailable`` when it cannot load)."""
    try:
        return _load_key_material()
    except ValueError as exc:  # e.g. the key does not belong to the certificate
        raise unavailable("The signing key does not belong to the signing certificate.", exc) from None


def _load_key_material() -> KeyMaterial:
    if settings.ISSUER_PKCS11_MODULE:
        return load_pkcs11(_token_config(), _load_certificates())
    if settings.ISSUER_SIGNING_PKCS12:
        return load_pkcs12(Path(settings.ISSUER_SIGNING_PKCS12), settings.ISSUER_SIGNING_PKCS12_PASSWORD or None)
    if settings.ISSUER_SIGNING_KEY or settings.ISSUER_SIGNING_CERT:
        if not (settings.ISSUER_SIGNING_KEY and settings.ISSUER_SIGNING_CERT):
            raise unavailable("Both ISSUER_SIGNING_KEY and ISSUER_SIGNING_CERT must be set.")
        passphrase = settings.ISSUER_SIGNING_KEY_PASSWORD.encode() if settings.ISSUER_SIGNING_KEY_PASSWORD else None
        return load_pem(
            Path(settings.ISSUER_SIGNING_KEY),
            Path(settings.ISSUER_SIGNING_CERT),
            [Path(p) for p in settings.ISSUER_SIGNING_CHAIN],
            passphrase,
        )
    if settings.ISSUER_DEV_KEYS:
        return load_dev_keys(Path(settings.ISSUER_KEY_DIR))
    raise unavailable("No signing key is configured (ISSUER_PKCS11_MODULE, or a key file where allowed).")


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
    """Roots a stamp's signature must chain to: the signing certificate's roots plus ISSUER_TRUST_ROOTS.

    Loads certificates only: verification never loads the signer."""
    global _trust_roots
    roots = _trust_roots
    if roots is None:
        extra: list[x509.Certificate] = []
        for path in settings.ISSUER_TRUST_ROOTS:
            try:
                extra.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
            except (OSError, ValueError) as exc:
                raise unavailable("A configured trust root (ISSUER_TRUST_ROOTS) cannot be loaded.", exc) from None
        roots = _trust_roots = tuple(certificates().roots) + tuple(extra)
    return roots


def signing_roots() -> tuple[x509.Certificate, ...]:
    """The root(s) the signing key's certificate chains to: what the issuer publishes for verifiers
    to trust (not the extra ``ISSUER_TRUST_ROOTS``, which are other parties')."""
    keys = get_engine().keys
    return tuple(keys.trust_roots or (keys.chain[-1:] if keys.chain else (keys.certificate,)))


def reset_engine() -> None:
    """Forget the cached engine and certificates (after a key rotation, or in tests that change the settings)."""
    global _engine, _certificates, _trust_roots
    with _lock:
        close = getattr(_engine.keys.signer, "close", None) if _engine is not None else None
        if close is not None:  # a token session: log out now rather than whenever it is collected
            close()
        _engine = None
        _certificates = None
        _trust_roots = None
