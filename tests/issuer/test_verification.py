"""Public verification: by serial and by upload, as a service, over the API and as HTML pages."""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import io
import json

import pikepdf
from django.utils import timezone

from issuer.models import Serial
from issuer.selectors import InvalidSerial, SerialNotFound, verify_document, verify_serial
from issuer.serials import new_serial
from issuer.services import stamp_document
from tests.fixtures.pdfs import factory

BOX = (420.0, 60.0, 520.0, 160.0)

pytestmark = pytest.mark.django_db


@pytest.fixture
def stamped(channels):
    return stamp_document(
        channel=channels["alpha"], data=factory.text_pdf(), page=1, box=BOX, document_type="kuitansi",
        document_number="INV-42", reason="Kuitansi",
    )  # fmt: skip


def _typo(serial: str) -> str:
    swapped = "A" if serial[3] != "A" else "B"
    return serial[:3] + swapped + serial[4:]


def _void_serial(channel) -> Serial:
    return Serial.objects.create(
        serial=new_serial(), channel=channel, status="void", profile="default", document_sha256="a" * 64,
        page=1, page_count=1, box_llx=0, box_lly=0, box_urx=50, box_ury=50, voided_at=timezone.now(),
        void_reason="signing failed: internal: RuntimeError",
    )  # fmt: skip


# -- by serial --------------------------------------------------------------------------------


def test_verify_serial_shows_the_public_facts_only(stamped) -> None:
    result = verify_serial(f"  {stamped.serial.lower()} ")
    assert result == {
        "serial": stamped.serial,
        "status": "used",
        "valid": True,
        "used_at": stamped.signed_at.isoformat(),
        "voided_at": None,
        "channel": {"code": "alpha", "name": "Alpha Channel"},
        "profile": "default",
        "document_type": "Kuitansi",
        "verification_url": stamped.verification_url,
    }
    text = json.dumps(result)
    assert stamped.sha256_in not in text and stamped.sha256_out not in text and "INV-42" not in text


def test_verify_serial_void(channels) -> None:
    row = _void_serial(channels["beta"])
    result = verify_serial(row.serial)
    assert (result["status"], result["valid"], result["used_at"]) == ("void", False, None)
    assert "RuntimeError" not in json.dumps(result)


def test_verify_serial_refuses_a_mistyped_serial(stamped) -> None:
    with pytest.raises(InvalidSerial):
        verify_serial(_typo(stamped.serial))
    with pytest.raises(InvalidSerial):
        verify_serial("short")


def test_verify_serial_unknown(db) -> None:
    with pytest.raises(SerialNotFound):
        verify_serial(new_serial())


# -- by document ------------------------------------------------------------------------------


def test_verify_document_valid(stamped) -> None:
    result = verify_document(stamped.pdf)
    assert result["valid"] and result["failed_check"] is None
    assert result["document_sha256"] == stamped.sha256_out
    (stamp,) = result["stamps"]
    assert stamp["serial"] == stamped.serial and stamp["valid"]
    assert all(stamp["checks"].values())
    assert stamp["registry"]["status"] == "used"
    (signature,) = result["signatures"]
    assert signature["valid"] and signature["serial"] == stamped.serial


def test_verify_document_without_a_stamp(db) -> None:
    result = verify_document(factory.text_pdf())
    assert (result["valid"], result["failed_check"], result["stamps"]) == (False, "no_stamp", [])


def test_verify_document_changed_after_stamping(stamped) -> None:
    # an incremental update appended after the stamp (e.g. a viewer saving an annotation)
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(stamped.pdf))
    writer.root["/Lang"] = generic.TextStringObject("id-ID")
    writer.update_root()
    buffer = io.BytesIO()
    writer.write(buffer)
    changed = buffer.getvalue()
    assert changed.startswith(stamped.pdf) and len(changed) > len(stamped.pdf)
    result = verify_document(changed)
    assert not result["valid"]
    (stamp,) = result["stamps"]
    assert stamp["checks"]["matches_registry"] and not stamp["checks"]["unchanged_since_stamping"]


def test_verify_document_tampered_bytes(stamped) -> None:
    tampered = stamped.pdf.replace(b"SURAT PERNYATAAN", b"SURAT PERNYATAAM", 1)
    if tampered == stamped.pdf:  # content stream compressed: flip a byte inside the first stream
        position = stamped.pdf.index(b"stream") + 20
        tampered = stamped.pdf[:position] + bytes([stamped.pdf[position] ^ 1]) + stamped.pdf[position + 1 :]
    result = verify_document(tampered)
    assert not result["valid"]
    assert result["failed_check"] in {"signature_intact", "matches_registry"}


def test_verify_document_unregistered_serial(stamped) -> None:
    Serial.objects.filter(serial=stamped.serial).delete()
    result = verify_document(stamped.pdf)
    assert (result["valid"], result["failed_check"]) == (False, "registered")


def test_verify_document_void_serial(stamped) -> None:
    Serial.objects.filter(serial=stamped.serial).update(
        status="void", voided_at=timezone.now(), used_at=None, stamped_sha256="", stamped_size=None
    )
    result = verify_document(stamped.pdf)
    assert (result["valid"], result["failed_check"]) == (False, "serial_used")


# -- the API on the issuer host ---------------------------------------------------------------


def test_api_verify_serial(client_for, stamped) -> None:
    response = client_for(None).get(f"/api/v1/verify/{stamped.serial}")
    assert response.status_code == 200
    assert response.json()["serial"] == stamped.serial and response.json()["status"] == "used"


@pytest.mark.parametrize(
    ("serial", "status", "code"), [("typo", 400, "invalid_serial"), ("new", 404, "serial_not_found")]
)
def test_api_verify_serial_problems(client_for, stamped, serial, status, code) -> None:
    value = _typo(stamped.serial) if serial == "typo" else new_serial()
    response = client_for(None).get(f"/api/v1/verify/{value}")
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["status"]) == (code, status) and body["request_id"].startswith("req_")


def test_api_verify_upload(client_for, stamped) -> None:
    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"
    response = client_for(None).post("/api/v1/verify", {"document": upload})
    assert response.status_code == 200
    assert response.json()["valid"] and response.json()["stamps"][0]["serial"] == stamped.serial


def test_api_verify_upload_encrypted_needs_the_password(client_for, channels) -> None:
    buffer = io.BytesIO()
    with pikepdf.open(io.BytesIO(factory.text_pdf())) as pdf:
        pdf.save(buffer, encryption=pikepdf.Encryption(owner="o-pw", user="u-pw", R=6))
    outcome = stamp_document(channel=channels["alpha"], data=buffer.getvalue(), page=1, box=BOX, password="u-pw")
    client = client_for(None)
    upload = io.BytesIO(outcome.pdf)
    upload.name = "x.pdf"
    wrong = client.post("/api/v1/verify", {"document": upload, "password": "nope"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "wrong_password"
    upload.seek(0)
    right = client.post("/api/v1/verify", {"document": upload, "password": "u-pw"})
    assert right.status_code == 200 and right.json()["valid"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({}, 400, "validation_failed"), ({"document": b"not a pdf"}, 415, "not_a_pdf")],
    ids=["missing", "garbage"],
)
def test_api_verify_upload_problems(client_for, db, body, status, code) -> None:
    data = {}
    for name, content in body.items():
        data[name] = io.BytesIO(content)
        data[name].name = "file.pdf"
    response = client_for(None).post("/api/v1/verify", data)
    assert response.status_code == status and response.json()["code"] == code


@pytest.mark.parametrize("path", ["/api/v1/verify/2C5NV74I6D0HJ1EZ000DU9", "/api/v1/verify", "/v/X", "/verify"])
def test_verification_is_not_served_on_a_channel_host(client_for, path) -> None:
    response = client_for("alpha", key=None).get(path)
    assert response.status_code == 404


# -- the HTML pages ---------------------------------------------------------------------------


def test_page_for_a_used_serial(client_for, stamped) -> None:
    response = client_for(None).get(f"/v/{stamped.serial}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Valid e-Meterai" in html and stamped.serial in html and "Alpha Channel" in html


def test_page_for_a_void_serial(client_for, channels) -> None:
    row = _void_serial(channels["alpha"])
    response = client_for(None).get(f"/v/{row.serial}")
    assert response.status_code == 200 and "Void serial" in response.content.decode()


def test_page_for_mistyped_and_unknown_serials(client_for, stamped) -> None:
    client = client_for(None)
    typo = client.get(f"/v/{_typo(stamped.serial)}")
    assert typo.status_code == 400 and "check character" in typo.content.decode()
    unknown = client.get(f"/v/{new_serial()}")
    assert unknown.status_code == 404 and "not issued by this issuer" in unknown.content.decode()


def test_verify_page_serial_form_redirects(client_for, stamped) -> None:
    response = client_for(None).get("/verify", {"serial": f" {stamped.serial.lower()} "})
    assert response.status_code == 302 and response["Location"] == f"/v/{stamped.serial}"


def test_verify_page_upload_needs_csrf(stamped) -> None:
    from django.test import Client

    client = Client(HTTP_HOST="issuer.test", enforce_csrf_checks=True)
    page = client.get("/verify")
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.content.decode()
    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"
    refused = client.post("/verify", {"document": upload})
    assert refused.status_code == 403
    upload.seek(0)
    token = client.cookies["csrftoken"].value
    accepted = client.post("/verify", {"document": upload, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 200
    html = accepted.content.decode()
    assert "Validly stamped" in html and stamped.serial in html


def test_verify_page_upload_refusal(client_for, db) -> None:
    upload = io.BytesIO(b"GIF89a")
    upload.name = "x.pdf"
    response = client_for(None).post("/verify", {"document": upload})
    assert response.status_code == 415 and "Not a PDF file" in response.content.decode()


def test_home_and_status_pages_still_work(client_for, db) -> None:
    client = client_for(None)
    assert client.get("/").status_code == 200
    assert client.get("/status").status_code == 200


def test_verify_page_shows_each_e_meterai_of_a_twice_stamped_document(client_for, channels) -> None:
    from issuer.services import stamp_document as stamp_again

    first = stamp_again(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=BOX)
    second = stamp_again(channel=channels["alpha"], data=first.pdf, page=1, box=(300.0, 60.0, 400.0, 160.0))
    upload = io.BytesIO(second.pdf)
    upload.name = "twice.pdf"
    client = client_for(None, enforce_csrf_checks=False)
    page = client.post("/verify", {"document": upload})
    text = page.content.decode()
    assert page.status_code == 200 and "Validly stamped" in text
    assert first.serial in text and second.serial in text
    assert "signatures were added after it" in text


def test_verify_document_bytes_appended_after_a_stamp_that_allows_changes(stamped) -> None:
    """A default stamp allows later signatures, not any bytes: a comment appended after it is a change."""
    result = verify_document(stamped.pdf + b"\n% appended\n")
    assert not result["valid"] and result["failed_check"] == "unchanged_since_stamping"
    (stamp,) = result["stamps"]
    assert stamp["changes_allowed"] and stamp["later_revisions"]
