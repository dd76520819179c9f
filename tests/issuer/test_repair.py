"""Damaged cross-reference tables: an unsigned file is repaired and stamped, a signed one refused.

The damaged files are real producers' files (LibreOffice, pyHanko) with the damage a mail gateway
or an upload form does: a line inserted after the header, so every offset in the table is off.
"""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # an engine-only run (-p no:django, see conftest.py): these need Django and the database
    pytest.skip("Django-level issuer tests need pytest-django", allow_module_level=True)

import hashlib
import io
from pathlib import Path

import pikepdf

from issuer import errors
from issuer.engine import trust_roots
from issuer.models import Serial
from issuer.pdf import inspect_document
from issuer.services import stamp_document
from issuer.signing import verify_pdf
from tests.issuer.conftest import run_tool
from tests.issuer.rendering import assert_qr_everywhere
from tests.issuer.test_corpus import CORPUS, stamp_command

pytestmark = pytest.mark.django_db

BOX = "420,60,520,160"


def damaged(name: str) -> bytes:
    data = (CORPUS / name).read_bytes()
    header_end = data.index(b"\n") + 1
    return data[:header_end] + b"% added by a mail gateway\n" + data[header_end:]


def test_the_damage_is_refused_by_strict_reading() -> None:
    with pytest.raises(errors.DocumentUnreadable):
        inspect_document(damaged("libreoffice-writer.pdf"), max_bytes=20 * 1024 * 1024)


def test_unsigned_damaged_file_is_repaired_and_stamped(tmp_path: Path) -> None:
    source = tmp_path / "damaged.pdf"
    source.write_bytes(damaged("libreoffice-writer.pdf"))
    target = tmp_path / "stamped.pdf"
    code, body = stamp_command(str(source), str(target), "--box", BOX, "--reason", "Surat Pernyataan")
    assert code == 0, body
    assert body["repaired"] is True
    assert body["sha256_in"] == hashlib.sha256(source.read_bytes()).hexdigest()  # the upload's hash
    row = Serial.objects.get(serial=body["serial"])
    assert row.repaired and row.document_sha256 == body["sha256_in"]
    stamped = target.read_bytes()
    with pikepdf.open(io.BytesIO(stamped)) as pdf:
        assert len(pdf.pages) == 1
    report = verify_pdf(stamped, trust_roots())
    assert report.valid and report.serials == (body["serial"],)
    checked = run_tool("qpdf", "--check", str(target))
    assert checked.returncode == 0 and "No syntax or stream encoding errors" in checked.stdout, checked.stdout
    signed = run_tool("pdfsig", str(target))
    assert signed.stdout.count("Signature is Valid") == 1, signed.stdout
    assert_qr_everywhere(target, tmp_path, (420, 60, 520, 160), body["verification_url"])


def test_replaying_a_repaired_stamp_returns_the_same_document(channels) -> None:
    data = damaged("libreoffice-writer.pdf")
    first = stamp_document(channel=channels["alpha"], data=data, page=1, box=(420, 60, 520, 160), job_ref="r-1")
    again = stamp_document(channel=channels["alpha"], data=data, page=1, box=(420, 60, 520, 160), job_ref="r-1")
    assert again.replayed and again.repaired and again.pdf == first.pdf and again.serial == first.serial


def test_signed_damaged_file_stays_refused_and_nothing_is_minted(tmp_path: Path) -> None:
    source = tmp_path / "damaged-signed.pdf"
    source.write_bytes(damaged("pyhanko-signed.pdf"))
    target = tmp_path / "out.pdf"
    code, body = stamp_command(str(source), str(target), "--box", BOX)
    assert (code, body["code"]) == (2, "document_unreadable"), body
    assert "signature" in body["detail"]
    assert not target.exists() and Serial.objects.count() == 0


def test_a_truncated_file_is_not_repaired(tmp_path: Path) -> None:
    data = (CORPUS / "libreoffice-writer.pdf").read_bytes()
    source = tmp_path / "truncated.pdf"
    source.write_bytes(data[: len(data) - 600])  # the table and the end-of-file marker are gone
    code, body = stamp_command(str(source), str(tmp_path / "out.pdf"), "--box", BOX)
    assert (code, body["code"]) == (2, "document_unreadable") and Serial.objects.count() == 0
