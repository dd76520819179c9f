"""Server-drawn charts: the geometry of small inline SVG line and bar charts.

The functions return plain dicts that ``templates/includes/chart_line.html`` and
``chart_bars.html`` draw; no JavaScript and no chart library. Used by the back office, the public
status page and the channel portal. Every chart also carries its numbers (``table``) so the
template can offer them as a table for screen readers and for copying.

Numbers on axes, in tooltips and in tables are written one way, the Indonesian one the pages' tables
use (``format_number``: ``10.000``, ``2,5``). A value of ``None`` means "no value here" (a time
before the channel existed): nothing is drawn for it and its table cell says so, where a 0 would
draw a drop to zero that never happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH = 560  # a chart in half a page; pass width=1040 for one across the page
HEIGHT = 220
PAD_LEFT = 52
PAD_RIGHT = 14
PAD_TOP = 12
PAD_BOTTOM = 26
PALETTE_SIZE = 8  # .c0 .. .c7 in app.css


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]  # None: no value at this label (e.g. before the channel existed)
    css: str = ""  # a colour class of app.css (e.g. "ok", "bad"); default: the palette in order


def blank_before(values: list, *, starts: list[datetime], step: timedelta, since: datetime) -> list:
    """``values`` (one per time bucket) with ``None`` for the buckets that ended before ``since``
    (a channel's creation): nothing is drawn for a time the thing did not exist."""
    return [None if start + step <= since else v for v, start in zip(values, starts, strict=True)]


def nice_scale(top: float, ticks: int = 4) -> tuple[float, float]:
    """A round ceiling for ``top`` and the step between ``ticks`` grid lines (1, 2 or 5 x 10^k)."""
    if top <= 0:
        return float(ticks), 1.0
    raw = top / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * ticks >= top:
            return step * ticks, step
    return 10 * magnitude * ticks, 10 * magnitude  # pragma: no cover - the loop always returns


NO_VALUE = "\u2013"  # an en dash: the table cell of a time with no value


def format_number(value: float | None) -> str:
    """A number as Indonesian readers write it: dots between thousands, a decimal comma
    (``10.000``, ``1.234,5``, ``0,25``); whole numbers from 10 up, fractions to two places below."""
    if value is None:
        return NO_VALUE
    if abs(value - round(value)) < 1e-9 or abs(value) >= 10:
        text = f"{round(value):,}"
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.translate(str.maketrans({",": ".", ".": ","}))


_fmt = format_number


def _frame(top: float, height: int = HEIGHT) -> dict:
    ceiling, step = nice_scale(top)
    plot_h = height - PAD_TOP - PAD_BOTTOM
    grid = []
    count = round(ceiling / step)
    for i in range(count + 1):
        value = step * i
        grid.append({"y": round(PAD_TOP + plot_h - plot_h * value / ceiling, 1), "label": _fmt(value)})
    return {"ceiling": ceiling, "grid": grid, "plot_h": plot_h}


def _table(labels: list[str], series: list[Series]) -> dict:
    """The chart's numbers, one row per x label, one column per series."""
    return {
        "columns": [s.name for s in series],
        "rows": [(label, [_fmt(s.values[i]) for s in series]) for i, label in enumerate(labels)],
    }


def _x_labels(labels: list[str], xs: list[float], max_labels: int = 7) -> list[dict]:
    if not labels:
        return []
    every = max(1, math.ceil(len(labels) / max_labels))
    picked = [{"x": xs[i], "label": labels[i]} for i in range(0, len(labels), every)]
    return picked


def line_chart(
    *,
    labels: list[str],
    series: list[Series],
    unit: str = "",
    title: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> dict:
    """Lines over shared x ``labels``; each series gets a palette colour in order."""
    n = len(labels)
    top = max((v for s in series for v in s.values if v is not None), default=0)
    frame = _frame(top, height)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    xs = [round(PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 1) for i in range(n)]
    bottom = PAD_TOP + frame["plot_h"]
    drawn = []
    for index, s in enumerate(series):
        # Only the labels with a value are drawn: the line starts where the series has one.
        known = [
            (x, round(bottom - frame["plot_h"] * v / frame["ceiling"], 1), v, label)
            for x, v, label in zip(xs, s.values, labels, strict=True)
            if v is not None
        ]
        points = " ".join(f"{x},{y}" for x, y, _, _ in known)
        area = f"{known[0][0]},{bottom} {points} {known[-1][0]},{bottom}" if known else ""
        drawn.append(
            {
                "name": s.name,
                "css": s.css or f"c{index % PALETTE_SIZE}",
                "points": points,
                "area": area,
                "last": _fmt(known[-1][2]) if known else _fmt(None),
                "dots": [
                    {"x": x, "y": y, "title": f"{s.name} {label}: {_fmt(v)} {unit}".strip()} for x, y, v, label in known
                ]
                if n <= 96
                else [],
            }
        )
    return {
        "kind": "line",
        "title": title,
        "unit": unit,
        "width": width,
        "height": height,
        "left": PAD_LEFT,
        "right": width - PAD_RIGHT,
        "bottom": PAD_TOP + frame["plot_h"],
        "grid": frame["grid"],
        "xlabels": _x_labels(labels, xs, max(4, width // 95)),
        "series": drawn,
        "empty": top <= 0,
        "table": _table(labels, series),
    }


def bar_chart(
    *,
    labels: list[str],
    stacks: list[Series],
    unit: str = "",
    title: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> dict:
    """Stacked bars, one per label; ``stacks`` are drawn bottom-up in order."""
    n = len(labels)
    totals = [sum(s.values[i] or 0 for s in stacks) for i in range(n)]
    frame = _frame(max(totals, default=0), height)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    slot = plot_w / n if n else plot_w
    bar_w = round(max(1.0, slot * 0.72), 1)
    bars = []
    xs = []
    for i in range(n):
        x = PAD_LEFT + slot * i + (slot - bar_w) / 2
        xs.append(round(x + bar_w / 2, 1))
        base = PAD_TOP + frame["plot_h"]
        parts = []
        for index, s in enumerate(stacks):
            h = frame["plot_h"] * (s.values[i] or 0) / frame["ceiling"]
            if h <= 0:
                continue
            base -= h
            parts.append(
                {
                    "y": round(base, 1),
                    "h": round(h, 1),
                    "css": s.css or f"c{index % PALETTE_SIZE}",
                    "title": f"{labels[i]} {s.name}: {_fmt(s.values[i])} {unit}".strip(),
                }
            )
        bars.append({"x": round(x, 1), "w": bar_w, "parts": parts})
    return {
        "kind": "bars",
        "title": title,
        "unit": unit,
        "width": width,
        "height": height,
        "left": PAD_LEFT,
        "right": width - PAD_RIGHT,
        "bottom": PAD_TOP + frame["plot_h"],
        "grid": frame["grid"],
        "xlabels": _x_labels(labels, xs, max(4, width // 95)),
        "bars": bars,
        "legend": [{"name": s.name, "css": s.css or f"c{index % PALETTE_SIZE}"} for index, s in enumerate(stacks)],
        "empty": max(totals, default=0) <= 0,
        "table": _table(labels, stacks),
    }
