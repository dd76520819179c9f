"""Verification is bounded: caps on signatures and revisions, a time budget, its own busy workers.

The crafted documents are built here (many signature fields sharing one real CMS container; many
small incremental updates), never committed as files. Everything goes through the real HTTP stack
and the real worker processes of ``issuer.verification``.
"""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import io
import threading
import time

import pikepdf
from django.db import connection

from issuer.pdf.inspect import last_startxref
from issuer.services import stamp_document
from issuer.verification import reset_pool
from tests.fixtures.pdfs import factory

BOX = (420.0, 60.0, 520.0, 160.0)
pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_pool():
    reset_pool()
    yield
    reset_pool()


@pytest.fixture
def stamped(channels):
    return stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=BOX)


def _post(client, data: bytes):
    upload = io.BytesIO(data)
    upload.name = "crafted.pdf"
    return client.post("/api/v1/verify", {"document": upload})


def with_signature_fields(stamped_pdf: bytes, count: int) -> bytes:
    """The stamped document plus ``count`` more filled signature fields, all holding its real CMS."""
    with pikepdf.open(io.BytesIO(stamped_pdf)) as pdf:
        first = pdf.Root.AcroForm.Fields[0]
        contents, byte_range = first.V.Contents, first.V.ByteRange
        page = pdf.pages[0].obj
        for number in range(count):
            signature = pdf.make_indirect(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Sig, Filter=pikepdf.Name("/Adobe.PPKLite"),
                    SubFilter=pikepdf.Name("/ETSI.CAdES.detached"), ByteRange=byte_range, Contents=contents,
                )
            )  # fmt: skip
            widget = pdf.make_indirect(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Sig,
                    T=pikepdf.String(f"crafted{number}"), V=signature, Rect=[0, 0, 0, 0], P=page, F=2,
                )
            )  # fmt: skip
            pdf.Root.AcroForm.Fields.append(widget)
            page.Annots.append(widget)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def with_revisions(data: bytes, count: int) -> bytes:
    """``data`` (a classic cross-reference table) with ``count`` tiny incremental updates appended."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        root = b"%d %d R" % pdf.Root.objgen
        size = int(pdf.trailer.Size)
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    previous, _stream = last_startxref(data)
    for revision in range(count):
        number = size + revision
        offset = len(out)
        out += b"%d 0 obj\n<< /Revision %d >>\nendobj\n" % (number, revision)
        xref_at = len(out)
        out += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (number, offset)
        out += b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            number + 1, root, previous, xref_at,
        )  # fmt: skip
        previous = xref_at
    return bytes(out)


def test_too_many_signatures_is_document_too_complex(settings, stamped, client_for) -> None:
    settings.VERIFY_MAX_SIGNATURES = 10
    crafted = with_signature_fields(stamped.pdf, 63)  # 64 signatures, as in the report
    response = _post(client_for(None), crafted)
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "document_too_complex" and body["request_id"].startswith("req_")
    assert (body["signatures"], body["max_signatures"]) == (64, 10)
    assert "64 signatures" in body["detail"]


def test_signatures_up_to_the_cap_are_verified(settings, stamped, client_for) -> None:
    settings.VERIFY_MAX_SIGNATURES = 3
    response = _post(client_for(None), with_signature_fields(stamped.pdf, 2))
    assert response.status_code == 200
    assert len(response.json()["signatures"]) == 3  # validated (the copies fail: their bytes are not theirs)


def test_too_many_revisions_is_document_too_complex(settings, stamped, client_for) -> None:
    settings.VERIFY_MAX_REVISIONS = 24
    crafted = with_revisions(stamped.pdf, 40)
    response = _post(client_for(None), crafted)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "document_too_complex" and body["revisions"] == 42 and body["max_revisions"] == 24
    allowed = _post(client_for(None), with_revisions(stamped.pdf, 3))
    assert allowed.status_code == 200  # under the cap: validated, not refused
    # The `default` profile allows later revisions (a second e-Meterai, another party's signature);
    # these three add only unreferenced objects, which change nothing a viewer shows.
    assert [stamp["serial"] for stamp in allowed.json()["stamps"]] == [stamped.serial]
    assert allowed.json()["stamps"][0]["later_revisions"] is True


def test_the_page_refuses_too_complex_documents_too(settings, stamped, client_for) -> None:
    settings.VERIFY_MAX_SIGNATURES = 2
    upload = io.BytesIO(with_signature_fields(stamped.pdf, 5))
    upload.name = "crafted.pdf"
    response = client_for(None).post("/verify", {"document": upload})
    assert response.status_code == 422 and b"too complex" in response.content


@pytest.fixture
def hanging_worker(monkeypatch, tmp_path, fresh_pool):
    """Worker processes started from now on stop dead before validating (kernel.faults)."""
    marker = tmp_path / "reached"
    monkeypatch.setenv("GATEWAY_FAULT_POINT", "verify.validate")
    monkeypatch.setenv("GATEWAY_FAULT_MARKER", str(marker))
    return marker


def test_a_worker_past_its_time_budget_is_killed_and_replaced(
    settings, stamped, client_for, hanging_worker, monkeypatch
) -> None:
    settings.VERIFY_TIME_BUDGET_SECONDS = 0.5
    from issuer import verification

    response = _post(client_for(None), stamped.pdf)
    assert response.status_code == 422 and response.json()["code"] == "document_too_complex"
    assert response.json()["reason"] == "time_budget" and hanging_worker.exists()
    slot = verification._pool._idle.queue  # the killed worker's slot is free again, without a worker
    assert slot == [None]
    monkeypatch.delenv("GATEWAY_FAULT_POINT")
    settings.VERIFY_TIME_BUDGET_SECONDS = 30
    again = _post(client_for(None), stamped.pdf)  # a fresh worker, not the one that was stopped
    assert again.status_code == 200 and again.json()["valid"]


def test_all_workers_busy_is_503_with_retry_after_at_once(settings, stamped, client_for, hanging_worker) -> None:
    settings.VERIFY_WORKERS = 1
    settings.VERIFY_TIME_BUDGET_SECONDS = 6
    first: dict = {}

    def occupy() -> None:
        try:
            first["response"] = _post(client_for(None), stamped.pdf)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=occupy)
    thread.start()
    try:
        for _ in range(600):  # until the one worker holds the first document
            if hanging_worker.exists():
                break
            time.sleep(0.05)
        assert hanging_worker.exists()
        response = _post(client_for(None), stamped.pdf)
        assert response.status_code == 503 and response.json()["code"] == "verification_busy"
        assert int(response["Retry-After"]) >= 1
    finally:
        thread.join()
    assert first["response"].json()["code"] == "document_too_complex"
