"""Stamps on AcroForms that ask viewers to draw their fields (``/NeedAppearances true``).

Poppler (Evince, Okular, pdftoppm) regenerates every field of such a form and then draws no
signature widget: the stamp was invisible there, while PDFium showed it.  Three real producers'
forms (pdflatex/hyperref, LibreOffice, ReportLab's classic form module; ``build_forms.py``) are
prepared (field appearances generated, the flag dropped) and stamped; the QR code of the stamp is
read back from a poppler and a PDFium rendering, and the output passes pyHanko, pdfsig and qpdf.
An encrypted form cannot be rewritten: the stamp's own update drops the flag.
"""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest

from issuer.pdf import inspect_document
from issuer.pdf.prepare import prepare_document
from issuer.serials import new_serial
from issuer.signing import verify_pdf
from tests.issuer.conftest import SIGNED_AT, run_tool
from tests.issuer.rendering import assert_qr_everywhere

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs" / "corpus"
FORMS = ["pdflatex-form.pdf", "libreoffice-form.pdf", "reportlab-overlay-form.pdf"]
BOX = (420.0, 60.0, 520.0, 160.0)
MAX = 20 * 1024 * 1024


def _stamp(engine, data: bytes, password: str | None = None):
    prepared = prepare_document(data, password=password, max_bytes=MAX)
    result = engine.stamp(
        prepared.data, info=prepared.info, page=1, box=BOX, serial=new_serial(), reason="Formulir",
        location="Jakarta", signed_at=SIGNED_AT, password=password,
    )  # fmt: skip
    return prepared, result


def _checks(path: Path, dev_keys, password: str | None = None) -> None:
    result = run_tool("qpdf", *([f"--password={password}"] if password else []), "--check", str(path))
    assert result.returncode == 0 and "No syntax or stream encoding errors" in result.stdout, result.stdout
    result = run_tool("pdfsig", *(["-upw", password] if password else []), str(path))
    assert result.stdout.count("Signature is Valid") == result.stdout.count("Signature #") == 1, result.stdout
    assert verify_pdf(path.read_bytes(), dev_keys.trust_roots, password=password).valid


@pytest.mark.parametrize("name", FORMS)
def test_stamp_on_a_need_appearances_form_shows_in_poppler_and_pdfium(engine, dev_keys, tmp_path, name) -> None:
    original = (CORPUS / name).read_bytes()
    assert inspect_document(original, max_bytes=MAX).need_appearances  # the producer asked for it
    prepared, result = _stamp(engine, original)
    assert prepared.appearances_generated and not prepared.repaired
    with pikepdf.open(io.BytesIO(result.pdf)) as pdf:
        acroform = pdf.Root.AcroForm
        assert "/NeedAppearances" not in acroform
        fields = {str(field.get("/T")): field for field in acroform.Fields}
        # every field the producer left for the viewer to draw has its appearance now
        assert all("/AP" in field for name_, field in fields.items() if not name_.startswith("eMeterai_"))
    path = tmp_path / "stamped.pdf"
    path.write_bytes(result.pdf)
    _checks(path, dev_keys)
    assert_qr_everywhere(path, tmp_path, BOX, result.verification_url)


def test_encrypted_form_gets_the_flag_dropped_in_the_stamps_update(engine, dev_keys, tmp_path) -> None:
    buffer = io.BytesIO()
    with pikepdf.open(CORPUS / "pdflatex-form.pdf") as pdf:
        pdf.save(buffer, encryption=pikepdf.Encryption(owner="owner-pw", user="user-pw", R=6))
    original = buffer.getvalue()
    prepared, result = _stamp(engine, original, password="user-pw")
    assert not prepared.rewritten and result.pdf.startswith(original)  # incremental only
    assert not inspect_document(result.pdf, password="user-pw", max_bytes=MAX).need_appearances
    path = tmp_path / "stamped.pdf"
    path.write_bytes(result.pdf)
    _checks(path, dev_keys, password="user-pw")
    assert_qr_everywhere(path, tmp_path, BOX, result.verification_url, password="user-pw")
