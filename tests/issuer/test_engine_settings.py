"""``issuer.engine``: the per-process engine built from settings (dev keys, PEM, PKCS#12, broken keys)."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import io
from io import StringIO
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.management import CommandError, call_command

from issuer import engine as engine_module
from issuer import errors
from issuer.engine import get_engine, reset_engine, trust_roots
from issuer.models import Serial
from issuer.services import stamp_document
from issuer.signing import verify_pdf
from issuer.signing.keys import issue_certificate, make_root_ca
from tests.fixtures.pdfs import factory


@pytest.fixture
def fresh_engine(settings):
    reset_engine()
    yield settings
    reset_engine()


@pytest.fixture(scope="module")
def production_ca(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("prod-keys")
    root_key, root = make_root_ca("Production-like Root")
    key, cert = issue_certificate(root_key, root, "Production-like Signing")
    pem = serialization.Encoding.PEM
    paths = {name: directory / f"{name}.pem" for name in ("key", "cert", "root")}
    paths["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths["cert"].write_bytes(cert.public_bytes(pem))
    paths["root"].write_bytes(root.public_bytes(pem))
    paths["p12"] = directory / "signing.p12"
    paths["p12"].write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"signing", key, cert, [root], serialization.BestAvailableEncryption(b"p12-pass")
        )
    )
    return paths


def test_engine_is_cached_per_process(fresh_engine) -> None:
    assert get_engine() is get_engine()


def test_development_keys_are_made_by_the_command_never_on_first_use(fresh_engine, tmp_path) -> None:
    fresh_engine.ISSUER_KEY_DIR = tmp_path / "keys"
    with pytest.raises(errors.SigningUnavailable, match="dev_keys"):
        get_engine()
    with pytest.raises(errors.SigningUnavailable, match="dev_keys"):
        trust_roots()
    assert not (tmp_path / "keys" / "dev-signing.key.pem").exists()
    call_command("dev_keys", stdout=StringIO())
    reset_engine()
    engine = get_engine()
    assert (tmp_path / "keys" / "dev-signing.key.pem").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "keys" / "dev-root-ca.key.pem").exists()  # the root CA's key is not kept
    assert "Development" in engine.keys.certificate.subject.rfc4514_string()
    assert trust_roots() == engine.keys.trust_roots


def test_development_keys_are_refused_where_they_are_off(fresh_engine, tmp_path) -> None:
    fresh_engine.ISSUER_KEY_DIR = tmp_path / "keys"
    fresh_engine.ISSUER_DEV_KEYS = False
    with pytest.raises(CommandError, match="ISSUER_DEV_KEYS"):
        call_command("dev_keys", stdout=StringIO())
    with pytest.raises(errors.SigningUnavailable, match="No signing key is configured"):
        get_engine()
    assert not (tmp_path / "keys").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["pem", "pkcs12"])
def test_production_keys_from_files(fresh_engine, production_ca, channels, source) -> None:
    if source == "pem":
        fresh_engine.ISSUER_SIGNING_KEY = str(production_ca["key"])
        fresh_engine.ISSUER_SIGNING_CERT = str(production_ca["cert"])
        fresh_engine.ISSUER_SIGNING_CHAIN = [str(production_ca["root"])]
    else:
        fresh_engine.ISSUER_SIGNING_PKCS12 = str(production_ca["p12"])
        fresh_engine.ISSUER_SIGNING_PKCS12_PASSWORD = "p12-pass"
        fresh_engine.ISSUER_SIGNING_CERT = str(production_ca["cert"])  # verification reads no key file
        fresh_engine.ISSUER_SIGNING_CHAIN = [str(production_ca["root"])]
    assert "Production-like Signing" in get_engine().keys.certificate.subject.rfc4514_string()
    outcome = stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=(420, 60, 520, 160))
    report = verify_pdf(outcome.pdf, trust_roots())
    assert report.valid and "Production-like Signing" in report.signatures[0].signer_subject


@pytest.mark.django_db
@pytest.mark.parametrize(
    "broken",
    [
        {"ISSUER_SIGNING_PKCS12": "/nonexistent.p12"},
        {"ISSUER_SIGNING_PKCS12": "p12", "ISSUER_SIGNING_PKCS12_PASSWORD": "wrong"},
        {"ISSUER_SIGNING_KEY": "key"},
        {"ISSUER_SIGNING_KEY": "root", "ISSUER_SIGNING_CERT": "cert"},
        {"ISSUER_SIGNING_KEY": "key", "ISSUER_SIGNING_CERT": "root"},
    ],
    ids=["missing-file", "wrong-passphrase", "key-without-cert", "not-a-key", "key-cert-mismatch"],
)
def test_broken_key_material_is_signing_unavailable_and_records_nothing(
    fresh_engine, production_ca, channels, broken
) -> None:
    for name, value in broken.items():
        setattr(fresh_engine, name, str(production_ca[value]) if value in production_ca else value)
    with pytest.raises(errors.SigningUnavailable):
        stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=(420, 60, 520, 160))
    assert not Serial.objects.exists()


# -- verification loads certificates only -----------------------------------------------------


def _upload(data: bytes) -> dict:
    document = io.BytesIO(data)
    document.name = "stamped.pdf"
    return {"document": document}


@pytest.mark.django_db
def test_verification_through_http_never_loads_the_signer(
    fresh_engine, production_ca, channels, client_for, tmp_path, monkeypatch
) -> None:
    fresh_engine.ISSUER_SIGNING_KEY = str(production_ca["key"])
    fresh_engine.ISSUER_SIGNING_CERT = str(production_ca["cert"])
    fresh_engine.ISSUER_SIGNING_CHAIN = [str(production_ca["root"])]
    outcome = stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=(420, 60, 520, 160))
    reset_engine()  # a fresh web process: it has the certificate, but the key file is out of its reach
    fresh_engine.ISSUER_SIGNING_KEY = str(tmp_path / "not-readable-here.key.pem")

    def guard(*_args, **_kwargs):
        raise AssertionError("the web process loaded the signer")

    monkeypatch.setattr(engine_module, "_load_key_material", guard)
    monkeypatch.setattr(engine_module, "load_pem", guard)
    response = client_for(None).post("/api/v1/verify", _upload(outcome.pdf))
    assert response.status_code == 200, response.content
    assert response.json()["valid"] and response.json()["stamps"][0]["serial"] == outcome.serial


@pytest.mark.django_db
def test_anonymous_verification_never_makes_development_keys(fresh_engine, client_for, tmp_path) -> None:
    fresh_engine.ISSUER_KEY_DIR = tmp_path / "keys"
    response = client_for(None).post("/api/v1/verify", _upload(factory.text_pdf()))
    assert response.status_code == 503 and response.json()["code"] == "signing_unavailable"
    assert not (tmp_path / "keys").exists()
    assert str(tmp_path) not in response.content.decode()


@pytest.mark.django_db
def test_key_loading_errors_log_the_path_and_never_return_it(fresh_engine, client_for, tmp_path, caplog) -> None:
    secret_place = tmp_path / "srv-secret-keys"
    fresh_engine.ISSUER_SIGNING_KEY = str(secret_place / "signing.key.pem")
    fresh_engine.ISSUER_SIGNING_CERT = str(secret_place / "signing.pem")
    with caplog.at_level("ERROR", logger="issuer.signing.keys"):
        response = client_for(None).post("/api/v1/verify", _upload(factory.text_pdf()))
    assert response.status_code == 503 and response["Content-Type"] == "application/problem+json"
    body = response.content.decode()
    assert response.json()["code"] == "signing_unavailable" and response.json()["request_id"].startswith("req_")
    assert "srv-secret-keys" not in body and "No such file" not in body and "reason" not in response.json()
    assert any("srv-secret-keys" in getattr(record, "reason", "") for record in caplog.records)
