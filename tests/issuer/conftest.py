"""Fixtures of the engine tests: development keys, a stamping engine, sample documents.

These tests need no database.  To run them alone, without the Django plugin and the project's
root conftest:  ``.venv/bin/python -m pytest tests/issuer -p no:django --confcutdir=tests/issuer -q``
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from issuer.pdf import ProfileRules, inspect_document
from issuer.serials import new_serial
from issuer.signing import KeyMaterial, StampEngine, StampResult, load_or_create_dev_keys
from issuer.signing.keys import issue_certificate, make_root_ca
from tests.fixtures.pdfs import factory

VERIFY_URL = "https://verify.e-meterai.example/v"
SIGNED_AT = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer-keys")


@pytest.fixture(scope="session")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the development root CA's key is kept for tests that issue extra certificates (not key_dir)."""
    return tmp_path_factory.mktemp("issuer-ca")


@pytest.fixture(scope="session")
def dev_keys(key_dir: Path, ca_dir: Path) -> KeyMaterial:
    return load_or_create_dev_keys(key_dir, ca_directory=ca_dir)


@pytest.fixture(scope="session")
def engine(dev_keys: KeyMaterial) -> StampEngine:
    return StampEngine(dev_keys, VERIFY_URL)


@pytest.fixture(scope="session")
def text_a4() -> bytes:
    return factory.text_pdf()


@pytest.fixture(scope="session")
def other_signer_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PEM files of an unrelated signer ("someone else") for signing with plain pyHanko."""
    directory = tmp_path_factory.mktemp("other-signer")
    root_key, root_cert = make_root_ca("Other Party Root CA")
    key, cert = issue_certificate(root_key, root_cert, "Other Party Signer")
    paths = {"key": directory / "key.pem", "cert": directory / "cert.pem", "root": directory / "root.pem"}
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["root"].write_bytes(root_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def stamp(
    engine: StampEngine,
    data: bytes,
    *,
    page: int = 1,
    box: tuple[float, float, float, float] = (420, 60, 520, 160),
    password: str | None = None,
    rules: ProfileRules | None = None,
) -> StampResult:
    info = inspect_document(data, password=password, max_bytes=20 * 1024 * 1024)
    return engine.stamp(
        data,
        info=info,
        page=page,
        box=box,
        serial=new_serial(),
        reason="Surat Pernyataan",
        location="Jakarta",
        signed_at=SIGNED_AT,
        password=password,
        rules=rules,
    )


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed on this machine")
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
