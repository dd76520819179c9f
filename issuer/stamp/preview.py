"""A one-page PDF showing the stamp, for previews in the storefront and for tests."""

from __future__ import annotations

import io

import pikepdf

from issuer.stamp.render import BOX, StampAppearance


def stamp_preview_pdf(appearance: StampAppearance, size: float = 100.0, margin: float = 10.0) -> bytes:
    """A page of ``size + 2 * margin`` points with the stamp drawn ``size`` points wide."""
    pdf = pikepdf.new()
    side = size + 2 * margin
    page = pdf.add_blank_page(page_size=(side, side))
    form = pikepdf.Stream(pdf, appearance.content)
    form.Type = pikepdf.Name.XObject
    form.Subtype = pikepdf.Name.Form
    form.BBox = pikepdf.Array(appearance.bbox)
    fonts = pikepdf.Dictionary()
    for font in appearance.fonts:
        program = pikepdf.Stream(pdf, font.compressed)
        program.Filter = pikepdf.Name.FlateDecode
        program.Length1 = len(font.program)
        descriptor = pikepdf.Object.parse(font.descriptor(b"null"))
        descriptor.FontFile2 = pdf.make_indirect(program)
        dictionary = pikepdf.Object.parse(font.font_dictionary(b"null"))
        dictionary.FontDescriptor = pdf.make_indirect(descriptor)
        fonts[f"/{font.resource}"] = pdf.make_indirect(dictionary)
    form.Resources = pikepdf.Dictionary(Font=fonts, ProcSet=pikepdf.Array([pikepdf.Name.PDF, pikepdf.Name.Text]))
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Stamp=form))
    scale = size / BOX
    page.Contents = pikepdf.Stream(pdf, f"q {scale:.4f} 0 0 {scale:.4f} {margin} {margin} cm /Stamp Do Q".encode())
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()
