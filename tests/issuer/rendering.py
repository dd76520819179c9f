"""Reading a stamp's QR code back from what viewers draw: poppler (``pdftoppm``) and PDFium (``pypdfium2``)."""

from __future__ import annotations

from pathlib import Path

import pypdfium2
import zxingcpp
from PIL import Image

from tests.issuer.conftest import run_tool

DPI = 150
Box = tuple[float, float, float, float]


def displayed_height(data: bytes, page: int = 1, password: str | None = None) -> float:
    document = pypdfium2.PdfDocument(data, password=password)
    try:
        return float(document[page - 1].get_size()[1])
    finally:
        document.close()


def _crop(image: Image.Image, page_height_pt: float, box: Box) -> Image.Image:
    """The box and a margin, cut from a full-page rendering at ``DPI`` (box in displayed points)."""
    scale = DPI / 72
    llx, lly, urx, ury = box
    left, right = (llx - 10) * scale, (urx + 10) * scale
    top, bottom = (page_height_pt - ury - 10) * scale, (page_height_pt - lly + 10) * scale
    return image.crop((int(left), int(top), int(right), int(bottom))).convert("L")


def poppler_qr(path: Path, tmp_path: Path, box: Box, *, page: int = 1, password: str | None = None) -> list[str]:
    height = displayed_height(path.read_bytes(), page, password)
    args = ["pdftoppm", "-r", str(DPI), "-png", "-singlefile", "-f", str(page), "-l", str(page)]
    if password:
        args += ["-upw", password]
    result = run_tool(*args, str(path), str(tmp_path / "poppler"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "poppler.png") as image:
        return [found.text for found in zxingcpp.read_barcodes(_crop(image, height, box))]


def pdfium_qr(data: bytes, box: Box, *, page: int = 1, password: str | None = None) -> list[str]:
    document = pypdfium2.PdfDocument(data, password=password)
    document.init_forms()  # PDFium draws widget annotations (the stamp) through its form layer
    try:
        handle = document[page - 1]
        height = float(handle.get_size()[1])
        image = handle.render(scale=DPI / 72, may_draw_forms=True).to_pil()
        handle.close()
    finally:
        document.close()
    return [found.text for found in zxingcpp.read_barcodes(_crop(image, height, box))]


def assert_qr_everywhere(path: Path, tmp_path: Path, box: Box, url: str, *, page: int = 1, password=None) -> None:
    """The stamp's QR, read from a poppler and a PDFium rendering of ``page``, is ``url``."""
    assert poppler_qr(path, tmp_path, box, page=page, password=password) == [url], "poppler"
    assert pdfium_qr(path.read_bytes(), box, page=page, password=password) == [url], "PDFium"
