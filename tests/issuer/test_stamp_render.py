from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image

from issuer.serials import new_serial
from issuer.stamp import StampRenderer, stamp_preview_pdf
from issuer.stamp.render import qr_matrix, qr_rectangles
from tests.issuer.conftest import VERIFY_URL, run_tool


def test_rectangles_cover_exactly_the_dark_modules() -> None:
    rows = qr_matrix(f"{VERIFY_URL}/{new_serial()}")
    size = len(rows)
    covered = set()
    for x, y, width, height in qr_rectangles(rows):
        for dx in range(width):
            for dy in range(height):
                cell = (x + dx, size - 1 - (y + dy))
                assert cell not in covered
                covered.add(cell)
    dark = {(col, row) for row in range(size) for col in range(size) if rows[row][col] == 0}
    assert covered == dark


def test_content_is_compact_and_carries_the_texts() -> None:
    serial = new_serial()
    appearance = StampRenderer(VERIFY_URL).render(serial)
    assert appearance.url == f"{VERIFY_URL}/{serial}"
    for text in (b"METERAI ELEKTRONIK", b"Rp10.000", b"SEPULUH RIBU RUPIAH", serial.encode()):
        assert b"(" + text + b")" in appearance.content
    assert len(appearance.content) < 8000


@pytest.mark.parametrize(("size", "dpi"), [(54, 300), (100, 300), (54, 150)])
def test_qr_decodes_from_a_rendering(tmp_path, size: int, dpi: int) -> None:
    serial = new_serial()
    appearance = StampRenderer(VERIFY_URL).render(serial)
    pdf = tmp_path / "stamp.pdf"
    pdf.write_bytes(stamp_preview_pdf(appearance, size=size))
    result = run_tool("pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(tmp_path / "stamp"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "stamp.png") as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    assert [barcode.text for barcode in found] == [appearance.url]
