from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from issuer import errors
from issuer.signing import (
    HttpTimestamper,
    StampEngine,
    create_dev_keys,
    load_or_create_dev_keys,
    load_pkcs12,
    verify_pdf,
)
from issuer.signing.keys import DEV_ROOT_KEY, DEV_SIGNING_KEY, issue_certificate, load_dev_root_ca
from tests.issuer.conftest import VERIFY_URL, stamp
from tests.issuer.tsa import TimeStampAuthority, TsaServer


@pytest.fixture(scope="module")
def tsa(ca_dir: Path, dev_keys):
    root_key, root_cert = load_dev_root_ca(ca_dir)
    key, cert = issue_certificate(root_key, root_cert, "e-Meterai Development TSA", timestamping=True)
    with TsaServer(TimeStampAuthority(key, cert)) as server:
        yield server


def test_timestamped_signature_is_pades_b_t(dev_keys, tsa: TsaServer, text_a4: bytes) -> None:
    timestamper = HttpTimestamper(tsa.url, reserve=1024)  # deliberately too small: must grow
    engine = StampEngine(dev_keys, VERIFY_URL, timestamper)
    before = tsa.authority.requests
    result = stamp(engine, text_a4)
    assert result.timestamped
    assert tsa.authority.requests > before
    assert timestamper.reserve > 1024
    report = verify_pdf(result.pdf, dev_keys.trust_roots)
    assert report.valid
    assert report.signatures[0].timestamp_valid is True
    second = stamp(engine, text_a4)  # the grown reserve now fits at once
    assert verify_pdf(second.pdf, dev_keys.trust_roots).signatures[0].timestamp_valid is True


def test_unreachable_tsa_is_signing_unavailable(dev_keys, text_a4: bytes) -> None:
    engine = StampEngine(dev_keys, VERIFY_URL, HttpTimestamper("http://127.0.0.1:9/tsa", timeout=2))
    with pytest.raises(errors.SigningUnavailable) as caught:
        stamp(engine, text_a4)
    assert caught.value.http_status == 503


def test_timestamp_answer_for_another_digest_is_rejected(tsa: TsaServer) -> None:
    from issuer.signing.timestamps import timestamp_request, token_from_response

    answer = tsa.authority.respond(timestamp_request(hashlib.sha256(b"a").digest(), 5))
    with pytest.raises(errors.SigningUnavailable):
        token_from_response(answer, hashlib.sha256(b"b").digest(), 5)
    with pytest.raises(errors.SigningUnavailable):
        token_from_response(answer, hashlib.sha256(b"a").digest(), 6)


def test_dev_keys_are_private_and_created_once_under_concurrency(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_or_create_dev_keys(directory))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({material.certificate.serial_number for material in results}) == 1
    assert stat.S_IMODE((directory / DEV_SIGNING_KEY).stat().st_mode) == 0o600
    assert not (directory / DEV_ROOT_KEY).exists()  # the root CA's key is not kept beside the signing key
    material = results[0]
    assert "e-Meterai Development Signing" in material.certificate.subject.rfc4514_string()
    assert material.trust_roots and material.chain


def test_pkcs12_roundtrip(tmp_path: Path, dev_keys) -> None:
    blob = pkcs12.serialize_key_and_certificates(
        b"signer", dev_keys.private_key, dev_keys.certificate, list(dev_keys.chain), BestAvailableEncryption(b"pw")
    )
    path = tmp_path / "signer.p12"
    path.write_bytes(blob)
    loaded = load_pkcs12(path, "pw")
    assert loaded.certificate == dev_keys.certificate and loaded.trust_roots
    with pytest.raises(errors.SigningUnavailable):
        load_pkcs12(path, "wrong")


def test_root_ca_key_is_kept_only_in_a_separate_directory(tmp_path: Path) -> None:
    create_dev_keys(tmp_path / "keys", ca_directory=tmp_path / "ca")
    assert not (tmp_path / "keys" / DEV_ROOT_KEY).exists()
    assert stat.S_IMODE((tmp_path / "ca" / DEV_ROOT_KEY).stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="beside"):
        create_dev_keys(tmp_path / "other", ca_directory=tmp_path / "other")
