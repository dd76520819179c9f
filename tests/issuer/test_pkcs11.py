"""Signing with a key on a PKCS#11 token, for real against SoftHSM2 (no mock of the token).

The token lives in a temporary directory (``tests/fixtures/softhsm.py``); the keys are stamped with
through ``issuer.services.stamp_document`` - the service the stamping workers call - and the results
validated with pyHanko (``issuer.signing.verify_pdf``) against the token certificate's root.
"""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

from issuer import errors
from issuer.engine import get_engine, reset_engine, trust_roots
from issuer.models import Serial
from issuer.services import stamp_document
from issuer.signing import Pkcs11Signer, verify_pdf
from tests.fixtures.pdfs import factory
from tests.fixtures.softhsm import make_token, softhsm_module

if softhsm_module() is None:
    pytest.skip(
        "SoftHSM2 is not installed (Debian package softhsm2: libsofthsm2.so and softhsm2-util; "
        "scripts/ensure-browser.sh installs it when run as root)",
        allow_module_level=True,
    )

BOX = (420, 60, 520, 160)
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    token = make_token(tmp_path_factory.mktemp("softhsm"))
    token.certs = {  # type: ignore[attr-defined]
        "rsa": token.import_key("signing-rsa"),
        "ec": token.import_key("signing-ec", kind="ec"),
        "mismatched": token.import_key("signing-mismatched", mismatched=True),
        "no-cert": token.import_key("signing-no-cert", store_certificate=False),
    }
    return token


@pytest.fixture
def hsm(settings, token):
    """Settings for the token's RSA key, certificate from files; tests change what they need."""
    reset_engine()
    settings.ISSUER_DEV_KEYS = False  # nothing falls back to the development keys
    settings.ISSUER_PKCS11_MODULE = token.module
    settings.ISSUER_PKCS11_TOKEN_LABEL = token.label
    settings.ISSUER_PKCS11_KEY_LABEL = "signing-rsa"
    settings.ISSUER_PKCS11_PIN = token.pin
    settings.ISSUER_SIGNING_CERT = str(token.certs["rsa"])
    settings.ISSUER_SIGNING_CHAIN = [str(token.root_path)]
    yield settings
    reset_engine()


def _stamp(channels):
    return stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=BOX)


def test_stamp_with_an_rsa_key_on_the_token_validates(hsm, channels) -> None:
    outcome = _stamp(channels)
    engine = get_engine()
    assert isinstance(engine.keys.signer, Pkcs11Signer) and engine.keys.signer.algorithm == "rsa"
    with pytest.raises(AttributeError):
        engine.keys.private_key  # noqa: B018 - a token key never becomes a key object in this process
    report = verify_pdf(outcome.pdf, trust_roots())
    assert report.valid, report
    assert "e-Meterai HSM signing-rsa" in report.signatures[0].signer_subject
    assert report.signatures[0].serial == outcome.serial
    assert Serial.objects.get(serial=outcome.serial).status == "used"


def test_ecdsa_key_and_certificate_read_from_the_token(hsm, channels) -> None:
    hsm.ISSUER_PKCS11_KEY_LABEL = "signing-ec"
    hsm.ISSUER_SIGNING_CERT = ""  # the certificate stored on the token under the key's label
    outcome = _stamp(channels)
    assert get_engine().keys.signer.algorithm == "ecdsa"
    report = verify_pdf(outcome.pdf, trust_roots())
    assert report.valid and "e-Meterai HSM signing-ec" in report.signatures[0].signer_subject


def test_one_session_per_process_reopened_when_the_token_drops_it(hsm, channels) -> None:
    _stamp(channels)
    signer = get_engine().keys.signer
    assert signer.sessions_opened == 1
    _stamp(channels)
    assert signer.sessions_opened == 1  # the session is kept between stamps
    signer._session.close()  # what a token reset or an HSM fail-over does to the session
    outcome = _stamp(channels)
    assert signer.sessions_opened == 2
    assert verify_pdf(outcome.pdf, trust_roots()).valid


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ISSUER_PKCS11_PIN": "wrong-pin-9"}, "PIN"),
        ({"ISSUER_PKCS11_TOKEN_LABEL": "no-such-token"}, "token"),
        ({"ISSUER_PKCS11_KEY_LABEL": "no-such-key"}, "private key"),
        ({"ISSUER_PKCS11_MODULE": "/nonexistent/libpkcs11.so"}, "module"),
        ({"ISSUER_PKCS11_KEY_LABEL": "signing-mismatched", "ISSUER_SIGNING_CERT": ""}, "does not belong"),
        ({"ISSUER_PKCS11_KEY_LABEL": "signing-no-cert", "ISSUER_SIGNING_CERT": ""}, "certificate"),
        ({"ISSUER_PKCS11_PIN": ""}, "ISSUER_PKCS11_PIN"),
    ],
    ids=["wrong-pin", "unknown-token", "unknown-key", "no-module", "key-cert-mismatch", "no-cert-on-token", "no-pin"],
)
def test_token_problems_are_signing_unavailable_and_record_nothing(hsm, token, channels, change, message, caplog):
    for name, value in change.items():
        setattr(hsm, name, value)
    with caplog.at_level("DEBUG"), pytest.raises(errors.SigningUnavailable, match=message) as caught:
        _stamp(channels)
    assert caught.value.http_status == 503 and not caught.value.extra
    assert not Serial.objects.exists()
    assert token.pin not in caplog.text and "wrong-pin-9" not in caplog.text  # the PIN is never logged


def test_verification_with_the_certificate_from_files_never_opens_the_token(hsm, channels, client_for, monkeypatch):
    import io

    from issuer.signing import hsm as hsm_module

    outcome = _stamp(channels)
    reset_engine()

    def guard(*_args, **_kwargs):
        raise AssertionError("verification opened the PKCS#11 token")

    monkeypatch.setattr(hsm_module, "_token", guard)
    upload = io.BytesIO(outcome.pdf)
    upload.name = "stamped.pdf"
    response = client_for(None).post("/api/v1/verify", {"document": upload})
    assert response.status_code == 200 and response.json()["valid"]


def test_rsa_without_the_hashing_mechanism_signs_the_digest_info(hsm, channels) -> None:
    _stamp(channels)
    signer = get_engine().keys.signer
    signer._hash_on_token = False  # as on a token offering CKM_RSA_PKCS only
    outcome = _stamp(channels)
    report = verify_pdf(outcome.pdf, trust_roots())
    assert report.valid and report.signatures[0].intact
