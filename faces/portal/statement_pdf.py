"""The monthly statement as a PDF, drawn by the app: one A4 page of PDF content-stream operators
(text in the standard Helvetica font, which every reader has, so nothing is embedded) written with
pikepdf, and the month's sales drawn from the same bar geometry as the pages' charts
(``faces.charts.bar_chart``). No system dependency."""

from __future__ import annotations

import io

import pikepdf
from django.utils.translation import gettext as _

from billing.statements import Statement
from faces.charts import Series, bar_chart, format_number
from faces.wording import duty_basis

A4 = (595, 842)
MARGIN = 48


def _text(value: str) -> str:
    """A PDF literal string in WinAnsi (Helvetica's encoding): escaped, other characters as ``?``."""
    raw = value.encode("cp1252", errors="replace").decode("latin-1")
    return "(" + raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


class _Page:
    def __init__(self):
        self.ops: list[str] = []

    def text(self, x: float, y: float, value: str, *, size: float = 10, bold: bool = False, right: bool = False):
        if right:  # Helvetica's digits are 0.556 em wide; the figures are digits and dots
            x -= len(value) * size * 0.556
        self.ops.append(f"BT /{'F2' if bold else 'F1'} {size} Tf {x:.1f} {y:.1f} Td {_text(value)} Tj ET")

    def rect(self, x: float, y: float, w: float, h: float, *, grey: float | None = None, rgb=None):
        colour = f"{rgb[0]} {rgb[1]} {rgb[2]} rg" if rgb else f"{grey if grey is not None else 0} g"
        self.ops.append(f"{colour} {x:.1f} {y:.1f} {w:.1f} {h:.1f} re f 0 g")

    def line(self, x1: float, y1: float, x2: float, y2: float, *, grey: float = 0.8):
        self.ops.append(f"{grey} G 0.5 w {x1:.1f} {y1:.1f} m {x2:.1f} {y2:.1f} l S 0 G")


def _rupiah(value: int) -> str:
    return f"Rp {format_number(value)}"


def render_statement_pdf(statement: Statement) -> bytes:
    page = _Page()
    width, height = A4
    y = height - MARGIN
    page.text(MARGIN, y - 10, _("e-Meterai gateway - channel statement"), size=9)
    page.text(MARGIN, y - 34, f"{statement.channel_name} ({statement.channel_code})", size=18, bold=True)
    period = _("Month %(month)s: %(start)s to %(end)s, whole days in Asia/Jakarta") % {
        "month": statement.label, "start": statement.date_from.isoformat(), "end": statement.date_to.isoformat(),
    }  # fmt: skip
    page.text(MARGIN, y - 54, period, size=10)

    f = statement.figures
    rows = [
        (_("Units allocated by the issuer"), format_number(f["allocated"])),
        (_("Units sold to customers"), format_number(f["sold"])),
        (_("Units refunded"), format_number(f["refunded"])),
        (_("Net units sold"), format_number(f["net_sold"])),
        (_("Units used by completed stamps"), format_number(f["used"])),
        (_("Stamp duty owed to the treasury"), _rupiah(f["duty_due_rupiah"])),
    ]
    top = y - 90
    for index, (label, value) in enumerate(rows):
        row_y = top - index * 20
        if index % 2 == 0:
            page.rect(MARGIN, row_y - 6, width - 2 * MARGIN, 20, grey=0.94)
        page.text(MARGIN + 6, row_y, label, size=11, bold=index == len(rows) - 1)
        page.text(width - MARGIN - 6, row_y, value, size=11, bold=index == len(rows) - 1, right=True)
    basis_y = top - len(rows) * 20 - 12
    for offset, part in enumerate(_wrap(duty_basis(), 100)):
        page.text(MARGIN, basis_y - offset * 12, part, size=8)

    chart_top = basis_y - 50
    page.text(MARGIN, chart_top + 14, _("Units sold per day"), size=12, bold=True)
    chart = bar_chart(
        labels=[day.strftime("%d") for day in statement.days],
        stacks=[Series(_("Sold"), statement.sold_per_day, css="ok")],
        unit=_("units"), width=width - 2 * MARGIN, height=220,
    )  # fmt: skip

    def to_pdf_y(svg_y: float) -> float:  # the chart's y runs down from its top
        return chart_top - svg_y

    for tick in chart["grid"]:
        page.line(MARGIN + chart["left"], to_pdf_y(tick["y"]), MARGIN + chart["right"], to_pdf_y(tick["y"]))
        page.text(MARGIN + chart["left"] - 6, to_pdf_y(tick["y"]) - 3, tick["label"], size=7, right=True)
    for bar in chart["bars"]:
        for part in bar["parts"]:
            page.rect(MARGIN + bar["x"], to_pdf_y(part["y"] + part["h"]), bar["w"], part["h"], rgb=(0.16, 0.5, 0.35))
    for label in chart["xlabels"]:
        page.text(MARGIN + label["x"] - 5, to_pdf_y(chart["bottom"]) - 12, label["label"], size=7)
    if chart["empty"]:
        page.text(MARGIN + chart["left"] + 10, to_pdf_y(chart["bottom"]) + 40, _("No sales this month."), size=10)
    page.text(MARGIN, MARGIN, _("Figures are the issuer's settlement report for this channel and month."), size=8)

    pdf = pikepdf.new()
    fonts = pikepdf.Dictionary(
        F1=pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica,
                              Encoding=pikepdf.Name.WinAnsiEncoding),
        F2=pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                              BaseFont=pikepdf.Name("/Helvetica-Bold"), Encoding=pikepdf.Name.WinAnsiEncoding),
    )  # fmt: skip
    content = pikepdf.Stream(pdf, "\n".join(page.ops).encode("latin-1"))
    pdf.pages.append(
        pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, width, height],
                Contents=pdf.make_indirect(content),
                Resources=pikepdf.Dictionary(Font=fonts),
            )  # fmt: skip
        )
    )
    pdf.docinfo["/Title"] = _("Statement %(channel)s %(month)s") % {
        "channel": statement.channel_code, "month": statement.label,
    }  # fmt: skip
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines
