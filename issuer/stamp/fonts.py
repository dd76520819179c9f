"""Advance widths (1/1000 em) of the standard Type 1 fonts for the characters the stamp uses.

Values are the published metrics of the PDF standard 14 fonts Helvetica and Helvetica-Bold.
"""

from __future__ import annotations

_DIGITS = dict.fromkeys("0123456789", 556)

HELVETICA: dict[str, int] = {
    " ": 278, ".": 278, "-": 333, "/": 278, ":": 278, **_DIGITS,
    "A": 667, "B": 667, "C": 722, "D": 722, "E": 667, "F": 611, "G": 778, "H": 722, "I": 278,
    "J": 500, "K": 667, "L": 556, "M": 833, "N": 722, "O": 778, "P": 667, "Q": 778, "R": 722,
    "S": 667, "T": 611, "U": 722, "V": 667, "W": 944, "X": 667, "Y": 667, "Z": 611,
}  # fmt: skip

HELVETICA_BOLD: dict[str, int] = {
    **HELVETICA,
    "A": 722, "B": 722, "J": 556, "K": 722, "L": 611, "/": 278, ":": 333,
}  # fmt: skip


def text_width(text: str, widths: dict[str, int], size: float) -> float:
    """Width of ``text`` in user units at font ``size`` (unknown characters count as 600)."""
    return sum(widths.get(char, 600) for char in text) * size / 1000.0
