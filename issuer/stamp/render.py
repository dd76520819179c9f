"""The e-Meterai stamp as a vector Form XObject.

The design lives in a 100 x 100 unit box: an opaque white square with a thin border, a deep blue
title band with the emblem (a gold eight-pointed star in a ring, drawn from vectors) and METERAI
ELEKTRONIK, a QR code with the public verification URL, the face value (Rp10.000 and SEPULUH
RIBU RUPIAH) and the serial number.  The form's ``/BBox`` is that box; a widget annotation scales
it to whatever ``/Rect`` the caller chose (54 pt and 100 pt are the usual sizes), so the result is
crisp at any size.  Text is set in Noto Sans Regular and Bold, embedded as subsets
(:mod:`issuer.stamp.fonts`), so every viewer draws the same letters and a PDF/A input keeps all
its fonts embedded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import zxingcpp

from issuer.stamp.fonts import EmbeddedFont, stamp_fonts, text_width

BOX = 100.0
TITLE = "METERAI ELEKTRONIK"
FACE_VALUE = "Rp10.000"
FACE_VALUE_WORDS = "SEPULUH RIBU RUPIAH"

_INK = "0.11 0.13 0.16"  # near-black for text and QR: maximum contrast for scanners
_BAND = "0.07 0.23 0.42"  # deep blue title band
_GOLD = "0.86 0.66 0.16"  # the emblem
_BORDER_WIDTH = 1.4
_BAND_BOTTOM = 88.6
_QR_TOP = 84.6
_QR_BOTTOM = 27.4
_QR_QUIET_MODULES = 1
_DARK_RUN = re.compile(rb"\x00+")
_EMBLEM_CENTER = (7.4, 94.3)
_EMBLEM_RADIUS = 4.4
_TITLE_LEFT = 13.2  # the title is centred between the emblem and the right edge


@dataclass(frozen=True, slots=True)
class StampAppearance:
    """Content stream and fonts of the stamp form, drawn in ``(0, 0, 100, 100)``."""

    content: bytes
    fonts: tuple[EmbeddedFont, ...]
    url: str
    bbox: tuple[float, float, float, float] = (0.0, 0.0, BOX, BOX)

    def resources(self, font_refs: dict[str, bytes]) -> bytes:
        """The form's /Resources, with each font's dictionary at ``font_refs[font.resource]``."""
        fonts = b" ".join(b"/" + font.resource.encode("ascii") + b" " + font_refs[font.resource] for font in self.fonts)
        return b"<< /Font << " + fonts + b" >> /ProcSet [/PDF /Text] >>"


def verification_url(base_url: str, serial: str) -> str:
    return f"{base_url.rstrip('/')}/{serial}"


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _centered_text(
    text: str, font: EmbeddedFont, size: float, baseline: float, left: float = 0.0, right: float = BOX
) -> str:
    """``text`` centred between ``left`` and ``right``, made smaller if it would not fit."""
    room = right - left - 7.0  # clear of the border on both sides
    size = min(size, size * room / max(text_width(text, font, size), 0.001))
    x = left + (right - left - text_width(text, font, size)) / 2
    return f"BT /{font.resource} {_num(size)} Tf {_num(x)} {_num(baseline)} Td ({text}) Tj ET\n"


def _emblem() -> str:
    """A gold ring around an eight-pointed star: the seal, read at a glance."""
    cx, cy = _EMBLEM_CENTER
    outer, inner = _EMBLEM_RADIUS * 0.74, _EMBLEM_RADIUS * 0.34
    points = []
    for index in range(16):
        radius = outer if index % 2 == 0 else inner
        angle = math.pi / 2 + index * math.pi / 8
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    star = f"{_num(points[0][0])} {_num(points[0][1])} m "
    star += " ".join(f"{_num(x)} {_num(y)} l" for x, y in points[1:]) + " h f\n"
    r, k = _EMBLEM_RADIUS, 0.5523 * _EMBLEM_RADIUS  # four Bezier quarter circles
    ring = (
        f"{_num(cx + r)} {_num(cy)} m "
        f"{_num(cx + r)} {_num(cy + k)} {_num(cx + k)} {_num(cy + r)} {_num(cx)} {_num(cy + r)} c "
        f"{_num(cx - k)} {_num(cy + r)} {_num(cx - r)} {_num(cy + k)} {_num(cx - r)} {_num(cy)} c "
        f"{_num(cx - r)} {_num(cy - k)} {_num(cx - k)} {_num(cy - r)} {_num(cx)} {_num(cy - r)} c "
        f"{_num(cx + k)} {_num(cy - r)} {_num(cx + r)} {_num(cy - k)} {_num(cx + r)} {_num(cy)} c S\n"
    )
    return f"q {_GOLD} rg {_GOLD} RG 0.7 w " + ring + star + "Q\n"


def qr_matrix(text: str) -> list[bytes]:
    """Rows (top first) of the QR symbol for ``text``; a byte 0 is a dark module."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = barcode.to_image(scale=1, add_quiet_zones=False)
    rows, columns = image.shape
    pixels = bytes(memoryview(image))
    return [pixels[row * columns : (row + 1) * columns] for row in range(rows)]


def qr_rectangles(rows: list[bytes]) -> list[tuple[int, int, int, int]]:
    """Cover the dark modules with rectangles (x, y, width, height) in module units, y upwards.

    Horizontal runs are merged per row, and identical runs in consecutive rows are merged into one
    taller rectangle, which keeps the stream short and avoids hairline seams between rows.
    """
    size = len(rows)
    open_runs: dict[tuple[int, int], int] = {}  # (x, width) -> top row index
    rectangles: list[tuple[int, int, int, int]] = []

    def close(run: tuple[int, int], top: int, bottom_exclusive: int) -> None:
        x, width = run
        rectangles.append((x, size - bottom_exclusive, width, bottom_exclusive - top))

    for row_index, row in enumerate(rows):
        runs = [(match.start(), match.end() - match.start()) for match in _DARK_RUN.finditer(row)]
        current = set(runs)
        for run in [run for run in open_runs if run not in current]:
            close(run, open_runs.pop(run), row_index)
        for run in runs:
            open_runs.setdefault(run, row_index)
    for run, top in open_runs.items():
        close(run, top, size)
    return rectangles


class StampRenderer:
    """Builds stamp appearances; the static parts are prepared once per verification base URL."""

    def __init__(self, verify_base_url: str) -> None:
        self.verify_base_url = verify_base_url
        self.fonts = stamp_fonts()
        regular, bold = self.fonts
        self._regular = regular
        inset = _BORDER_WIDTH / 2
        self._head = (
            "q 1 g 0 0 100 100 re f\n"
            f"{_BAND} rg 0 {_num(_BAND_BOTTOM)} 100 {_num(BOX - _BAND_BOTTOM)} re f\n"
            f"{_INK} RG {_num(_BORDER_WIDTH)} w {_num(inset)} {_num(inset)} "
            f"{_num(BOX - _BORDER_WIDTH)} {_num(BOX - _BORDER_WIDTH)} re S\n"
            + _emblem()
            + "1 g "
            + _centered_text(TITLE, bold, 7.4, 91.6, left=_TITLE_LEFT, right=BOX - 1.0)
            + f"{_INK} rg "
            + _centered_text(FACE_VALUE, bold, 10.5, 16.8)
            + _centered_text(FACE_VALUE_WORDS, regular, 5.6, 10.2)
        ).encode("ascii")

    def render(self, serial: str) -> StampAppearance:
        url = verification_url(self.verify_base_url, serial)
        rows = qr_matrix(url)
        modules = len(rows) + 2 * _QR_QUIET_MODULES
        module = (_QR_TOP - _QR_BOTTOM) / modules
        origin_x = (BOX - len(rows) * module) / 2
        origin_y = _QR_BOTTOM + _QR_QUIET_MODULES * module
        parts = [f"q {_num(module)} 0 0 {_num(module)} {_num(origin_x)} {_num(origin_y)} cm\n"]
        parts.extend(f"{x} {y} {w} {h} re\n" for x, y, w, h in qr_rectangles(rows))
        parts.append("f Q\n")
        parts.append(_centered_text(serial, self._regular, 6.2, 3.6))  # as large as the width allows
        parts.append("Q\n")
        return StampAppearance(content=self._head + "".join(parts).encode("ascii"), fonts=self.fonts, url=url)


def render_stamp(serial: str, verify_base_url: str) -> StampAppearance:
    """Convenience wrapper around :class:`StampRenderer` for one-off use."""
    return StampRenderer(verify_base_url).render(serial)
