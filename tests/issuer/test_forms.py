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
import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from issuer.pdf import inspect_document
from issuer.pdf.prepare import prepare_document
from issuer.serials import new_serial
from issuer.signing import verify_pdf
from tests.issuer.conftest import SIGNED_AT, run_tool

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs" / "corpus"
FORMS = ["pdflatex-form.pdf", "libreoffice-form.pdf", "reportlab-overlay-form.pdf"]
BOX = (420.0, 60.0, 520.0, 160.0)
MAX = 20 * 1024 * 1024
DPI = 150


def _stamp(engine, data: bytes, password: str | None = None):
    prepared = prepare_document(data, password=password, max_bytes=MAX)
    result = engine.stamp(
        prepared.data, info=prepared.info, page=1, box=BOX, serial=new_serial(), reason="Formulir",
        location="Jakarta", signed_at=SIGNED_AT, password=password,
    )  # fmt: skip
    return prepared, result


def _crop(image: Image.Image, page_height_pt: float, box: tuple[float, float, float, float]) -> Image.Image:
    """The stamp's box and a margin, cut from a full-page rendering at ``DPI``."""
    scale = DPI / 72
    llx, lly, urx, ury = box
    left, right = (llx - 10) * scale, (urx + 10) * scale
    top, bottom = (page_height_pt - ury - 10) * scale, (page_height_pt - lly + 10) * scale
    return image.crop((int(left), int(top), int(right), int(bottom))).convert("L")


def poppler_qr(path: Path, tmp_path: Path, page_height: float, password: str | None = None, box=BOX) -> list[str]:
    args = ["pdftoppm", "-r", str(DPI), "-png", "-singlefile", "-f", "1", "-l", "1"]
    if password:
        args += ["-upw", password]
    result = run_tool(*args, str(path), str(tmp_path / "poppler"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "poppler.png") as image:
        return [found.text for found in zxingcpp.read_barcodes(_crop(image, page_height, box))]


def pdfium_qr(data: bytes, page_height: float, password: str | None = None, box=BOX) -> list[str]:
    document = pypdfium2.PdfDocument(data, password=password)
    document.init_forms()  # PDFium draws widget annotations (the stamp) through its form layer
    try:
        page = document[0]
        image = page.render(scale=DPI / 72, may_draw_forms=True).to_pil()
        page.close()
    finally:
        document.close()
    return [found.text for found in zxingcpp.read_barcodes(_crop(image, page_height, box))]


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
        page_height = float(pdf.pages[0].MediaBox[3])
    path = tmp_path / "stamped.pdf"
    path.write_bytes(result.pdf)
    _checks(path, dev_keys)
    assert poppler_qr(path, tmp_path, page_height) == [result.verification_url]
    assert pdfium_qr(result.pdf, page_height) == [result.verification_url]


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
    assert poppler_qr(path, tmp_path, 841.89, password="user-pw") == [result.verification_url]
    assert pdfium_qr(result.pdf, 841.89, password="user-pw") == [result.verification_url]
