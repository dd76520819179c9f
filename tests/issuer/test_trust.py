"""Demo stamps a verifier can trust: PAdES B-T from the local TSA, the root at a stable URL, and
poppler's ``pdfsig`` trusting both once the root is in its NSS database (docs/issuer.md)."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509

from issuer.engine import signing_roots
from issuer.signing import HttpTimestamper, StampEngine, verify_pdf
from issuer.signing.keys import issue_certificate
from issuer.signing.local_tsa import TimeStampAuthority, TsaServer
from tests.fixtures.pdfs import factory
from tests.issuer.conftest import VERIFY_URL, run_tool, stamp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_the_root_certificate_is_published_on_the_issuer_host(client_for) -> None:
    root = signing_roots()[0]
    pem = client_for(None).get("/ca/root.pem")
    assert pem.status_code == 200 and pem["Content-Type"] == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(pem.content) == root
    der = client_for(None).get("/ca/root.crt")
    assert der.status_code == 200 and der["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == root
    assert client_for(None).get("/ca/root.txt").status_code == 404
    assert client_for("alpha").get("/ca/root.pem").status_code == 404  # the issuer's host only


def _nss_database(directory: Path, root_pem: bytes) -> str:
    if shutil.which("certutil") is None:
        pytest.skip("certutil (libnss3-tools) is not installed on this machine")
    directory.mkdir()
    (directory / "root.pem").write_bytes(root_pem)
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, timeout=30)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{directory}", "-n", "e-Meterai root", "-t", "CT,C,C", "-i",
         str(directory / "root.pem")],
        check=True, timeout=30,
    )  # fmt: skip
    return f"sql:{directory}"


def test_a_time_stamped_stamp_is_trusted_by_pdfsig_with_the_root(dev_keys, ca_dir, tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization

    from issuer.signing.keys import load_dev_root_ca

    root_key, root_cert = load_dev_root_ca(ca_dir)
    key, cert = issue_certificate(root_key, root_cert, "e-Meterai Development TSA", timestamping=True)
    with TsaServer(TimeStampAuthority(key, cert)) as tsa:
        engine = StampEngine(dev_keys, VERIFY_URL, HttpTimestamper(tsa.url))
        result = stamp(engine, factory.text_pdf())
    assert result.timestamped
    assert verify_pdf(result.pdf, dev_keys.trust_roots).signatures[0].timestamp_valid is True
    path = tmp_path / "stamped.pdf"
    path.write_bytes(result.pdf)

    untrusted = run_tool("pdfsig", str(path)).stdout
    assert "Signature is Valid" in untrusted and "Certificate issuer isn't Trusted" in untrusted

    nss = _nss_database(tmp_path / "nss", root_cert.public_bytes(serialization.Encoding.PEM))
    trusted = run_tool("pdfsig", "-nssdir", nss, str(path)).stdout
    assert "Signature is Valid" in trusted and "Certificate is Trusted" in trusted, trusted


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_local_tsa_command_serves_time_stamps(key_dir, ca_dir, dev_keys, tmp_path) -> None:
    """``manage.py local_tsa`` (what ``make demo`` starts) answers RFC 3161 requests with a token
    whose certificate chains to the development root."""
    import hashlib
    import os
    import urllib.request

    from issuer.signing.timestamps import timestamp_request, token_from_response

    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings.test", "ISSUER_KEY_DIR": str(key_dir),
           "ISSUER_DEV_CA_DIR": str(ca_dir), "ISSUER_SIGNING_PKCS12": "", "ISSUER_SIGNING_KEY": ""}  # fmt: skip
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "local_tsa", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        digest = hashlib.sha256(b"demo").digest()
        for _ in range(100):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/tsa", data=timestamp_request(digest, 7),
                    headers={"Content-Type": "application/timestamp-query"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - local
                    token = token_from_response(answer.read(), digest, 7)
                break
            except OSError:
                time.sleep(0.1)
        else:
            stderr = process.stderr.read() if process.poll() is not None else ""
            pytest.fail(f"the local TSA did not answer: {stderr}")
        assert token
    finally:
        process.terminate()
        process.wait(timeout=10)
