"""Rectangles and the mapping between what the user sees and PDF default user space."""

from __future__ import annotations

from dataclasses import dataclass

EPSILON = 0.01  # points; tolerates rounding in coordinates typed by people and front-ends


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle, always normalised (``llx <= urx`` and ``lly <= ury``)."""

    llx: float
    lly: float
    urx: float
    ury: float

    @classmethod
    def normalized(cls, x1: float, y1: float, x2: float, y2: float) -> Rect:
        return cls(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))

    @property
    def width(self) -> float:
        return self.urx - self.llx

    @property
    def height(self) -> float:
        return self.ury - self.lly

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersection(self, other: Rect) -> Rect:
        return Rect(
            max(self.llx, other.llx),
            max(self.lly, other.lly),
            max(min(self.urx, other.urx), max(self.llx, other.llx)),
            max(min(self.ury, other.ury), max(self.lly, other.lly)),
        )

    def overlaps(self, other: Rect) -> bool:
        """True when the two rectangles share an area (touching edges do not count)."""
        return (
            min(self.urx, other.urx) - max(self.llx, other.llx) > EPSILON
            and min(self.ury, other.ury) - max(self.lly, other.lly) > EPSILON
        )

    def contains(self, other: Rect) -> bool:
        return (
            other.llx >= self.llx - EPSILON
            and other.lly >= self.lly - EPSILON
            and other.urx <= self.urx + EPSILON
            and other.ury <= self.ury + EPSILON
        )

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.llx, self.lly, self.urx, self.ury)


def displayed_size(visible: Rect, rotate: int) -> tuple[float, float]:
    """Width and height of the visible area as the page is shown (after ``/Rotate``)."""
    if rotate in (90, 270):
        return visible.height, visible.width
    return visible.width, visible.height


def display_to_user(box: Rect, visible: Rect, rotate: int) -> Rect:
    """Map a box given in display coordinates to default user space.

    Display coordinates have their origin at the bottom-left corner of the visible area *as the
    viewer shows it*, i.e. after the page's clockwise ``/Rotate``; default user space is the
    unrotated coordinate system in which annotation ``/Rect`` entries live.
    """
    x0, y0, width, height = visible.llx, visible.lly, visible.width, visible.height

    def point(u: float, v: float) -> tuple[float, float]:
        if rotate == 90:
            return x0 + width - v, y0 + u
        if rotate == 180:
            return x0 + width - u, y0 + height - v
        if rotate == 270:
            return x0 + v, y0 + height - u
        return x0 + u, y0 + v

    ax, ay = point(box.llx, box.lly)
    bx, by = point(box.urx, box.ury)
    return Rect.normalized(ax, ay, bx, by)
