"""Where a stamp can go: a page rendered with PDFium, and the empty places on it.

``suggest_box`` looks for the empty square nearest the page's bottom-right corner (inside a margin)
on a rendering of the page as the viewer shows it (``/Rotate`` applied, CropBox), with a little
white space kept around it; when no square of that size is empty it takes the one with the least
ink there and says so (``covers_content``).  ``covers_content`` tells whether a given box has ink
under it.  Coordinates are points from the bottom-left corner of the page as displayed, like the
stamp API's box.

Rendering decodes the page's images: a full-page 800 KB scan costs tens of milliseconds, so this
runs for previews and ``box=auto`` only, never on every stamp.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pypdfium2
from PIL import Image

from issuer.errors import DocumentUnreadable

Box = tuple[float, float, float, float]

CELL = 4.0  # points per cell of the ink grid
MARGIN = 28.0  # points kept free from the page's edges (about 1 cm)
GAP = 1  # cells of white kept around a suggested box where possible
INK_BELOW = 200  # grey level (0 black .. 255 white) that counts as ink
MAX_PREVIEW_PIXELS = 2500 * 2500


@dataclass(frozen=True, slots=True)
class PageRendering:
    """A page rendered as displayed: ``image`` (greyscale or RGB) at ``scale`` pixels per point."""

    image: Image.Image
    scale: float
    width: float  # points, as displayed
    height: float

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", optimize=False, compress_level=6)
        return buffer.getvalue()


def render_page(
    data: bytes, *, page: int, password: str | None = None, dpi: float = 72.0, grey: bool = False
) -> PageRendering:
    """Render 1-based ``page`` of ``data`` with PDFium, forms and annotations included."""
    try:
        document = pypdfium2.PdfDocument(data, password=password or None)
    except pypdfium2.PdfiumError as exc:
        raise DocumentUnreadable("The PDF cannot be rendered.", extra={"reason": str(exc)[:200]}) from None
    try:
        document.init_forms()  # widget annotations (signatures, stamps, form fields) are drawn by the form layer
        handle = document[page - 1]
        try:
            width, height = handle.get_size()  # as displayed (rotation applied)
            scale = dpi / 72.0
            if width * height * scale * scale > MAX_PREVIEW_PIXELS:
                scale = (MAX_PREVIEW_PIXELS / (width * height)) ** 0.5
            bitmap = handle.render(scale=scale, may_draw_forms=True, grayscale=grey)
            image = bitmap.to_pil()
            image = image.convert("L") if grey else image.convert("RGB")
        finally:
            handle.close()
    except pypdfium2.PdfiumError as exc:
        raise DocumentUnreadable("The PDF page cannot be rendered.", extra={"reason": str(exc)[:200]}) from None
    finally:
        document.close()
    return PageRendering(image=image, scale=scale, width=float(width), height=float(height))


def _ink_grid(rendering: PageRendering) -> tuple[int, int, list[list[int]]]:
    """(columns, rows, summed-area table) of cells that hold ink; row 0 is the page's top."""
    grey = rendering.image if rendering.image.mode == "L" else rendering.image.convert("L")
    ink = grey.point(lambda value: 255 if value < INK_BELOW else 0)
    columns = max(1, int(rendering.width // CELL))
    rows = max(1, int(rendering.height // CELL))
    cells = ink.resize((columns, rows), Image.Resampling.BOX)  # any ink in a cell: above 0
    pixels = cells.tobytes()
    table = [[0] * (columns + 1) for _ in range(rows + 1)]
    for row in range(rows):
        running = 0
        above, current = table[row], table[row + 1]
        base = row * columns
        for column in range(columns):
            running += pixels[base + column] > 0
            current[column + 1] = above[column + 1] + running
    return columns, rows, table


def _ink(table: list[list[int]], left: int, top: int, right: int, bottom: int) -> int:
    """Ink cells in columns [left, right) and rows [top, bottom)."""
    return table[bottom][right] - table[top][right] - table[bottom][left] + table[top][left]


def covers_content(rendering: PageRendering, box: Box) -> bool:
    llx, lly, urx, ury = box
    columns, rows, table = _ink_grid(rendering)
    left = max(0, min(columns, int(llx // CELL)))
    right = max(left, min(columns, -int(-urx // CELL)))
    top = max(0, min(rows, int((rendering.height - ury) // CELL)))
    bottom = max(top, min(rows, -int(-(rendering.height - lly) // CELL)))
    return _ink(table, left, top, right, bottom) > 0


def suggest_box(rendering: PageRendering, size: float) -> tuple[Box, bool]:
    """The empty ``size`` x ``size`` square nearest the bottom-right corner, and whether it still
    covers content (only when no empty square exists)."""
    columns, rows, table = _ink_grid(rendering)
    side = max(1, -int(-size // CELL))
    margin = int(MARGIN // CELL)
    if side + 2 * margin > min(columns, rows):
        margin = 0
    first_col, last_col = margin, columns - margin - side
    first_row, last_row = margin, rows - margin - side
    if last_col < first_col or last_row < first_row:  # the page is smaller than the stamp
        first_col, last_col, first_row, last_row = 0, max(0, columns - side), 0, max(0, rows - side)
    best: tuple[int, int, int, int, int] | None = None  # (ink, not padded, distance, column, row)
    for row in range(last_row, first_row - 1, -1):
        if best is not None and best[:2] == (0, 0) and (last_row - row) ** 2 > best[2]:
            break  # an empty, padded square nearer the corner than any left in the rows above
        for column in range(last_col, first_col - 1, -1):
            ink = _ink(table, column, row, column + side, row + side)
            if ink:
                padded = ink
            else:  # empty: prefer one with white space around it
                padded = _ink(
                    table, max(0, column - GAP), max(0, row - GAP),
                    min(columns, column + side + GAP), min(rows, row + side + GAP),
                )  # fmt: skip
            score = (ink, 1 if padded else 0)
            distance = (last_col - column) ** 2 + (last_row - row) ** 2
            key = (score[0], score[1], distance, column, row)
            if best is None or key < best:
                best = key
    assert best is not None
    ink, _padded, _distance, column, row = best
    llx = column * CELL
    ury = rendering.height - row * CELL
    box = (round(llx, 2), round(ury - size, 2), round(llx + size, 2), round(ury, 2))
    return box, ink > 0
