"""The stamp's fonts: subsets of Noto Sans (SIL Open Font License), embedded in every stamp.

The font comes from the ``fontpkg-noto-sans`` package (a variable TrueType font); a static
Regular and Bold are instanced from it with fontTools and cut down to the characters a stamp can
contain (capital letters, digits, a few signs: the serial alphabet is ``[0-9A-Z]``).  Each subset
is about 3 KB compressed.  Embedding them makes the stamp look the same in every viewer (no
substitute for a missing Helvetica) and keeps a PDF/A input's fonts all embedded.

Built once per process on first use, then shared. The layout tables (``GSUB``/``GPOS``/...) are
deleted before fontTools reads them: decoding them for nothing took about 0.7 s of CPU per font,
which every worker child paid on its first stamp (the build is now about 25 ms per font, the same
bytes). A Celery worker builds them in its parent before forking its pool (``gateway/celery.py``),
so children start with them.
Widths are in 1/1000 em, as PDF wants them (Noto Sans has 1000 units per em).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import zlib
from dataclasses import dataclass
from importlib.resources import files

CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-/:Rp"
FIRST_CHAR, LAST_CHAR = 32, 122  # WinAnsiEncoding codes covered by /Widths (space .. z)
DROPPED_TABLES = ("GSUB", "GPOS", "GDEF", "STAT", "DSIG")  # no shaping in a stamp: single glyphs, WinAnsi


@dataclass(frozen=True, slots=True)
class EmbeddedFont:
    """A TrueType subset and the PDF font dictionary entries that describe it."""

    resource: str  # the name in the stamp form's /Resources, e.g. "FB"
    base_font: str  # "ABCDEF+NotoSans-Bold": a subset tag from the program's hash
    program: bytes  # the TrueType subset
    compressed: bytes  # the program, deflated (the /FontFile2 stream's data)
    widths: dict[str, int]  # advance width per character, 1/1000 em
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int
    stem_v: int
    dictionary_head: bytes = b""  # the font dictionary up to its /FontDescriptor reference (built once)
    descriptor_head: bytes = b""  # the descriptor up to its /FontFile2 reference

    def width_array(self) -> bytes:
        codes = range(FIRST_CHAR, LAST_CHAR + 1)
        return b"[" + b" ".join(b"%d" % self.widths.get(chr(code), 0) for code in codes) + b"]"

    def font_dictionary(self, descriptor_ref: bytes) -> bytes:
        return self.dictionary_head + descriptor_ref + b" >>"

    def descriptor(self, file_ref: bytes) -> bytes:
        return self.descriptor_head + file_ref + b" >>"

    def with_heads(self) -> EmbeddedFont:
        llx, lly, urx, ury = self.bbox
        dictionary_head = (
            b"<< /Type /Font /Subtype /TrueType /BaseFont /" + self.base_font.encode("ascii")
            + b" /FirstChar %d /LastChar %d /Widths " % (FIRST_CHAR, LAST_CHAR) + self.width_array()
            + b" /Encoding /WinAnsiEncoding /FontDescriptor "
        )  # fmt: skip
        descriptor_head = (
            b"<< /Type /FontDescriptor /FontName /" + self.base_font.encode("ascii")
            + b" /Flags 32 /FontBBox [%d %d %d %d] /ItalicAngle 0" % (llx, lly, urx, ury)
            + b" /Ascent %d /Descent %d" % (self.ascent, self.descent)
            + b" /CapHeight %d /StemV %d" % (self.cap_height, self.stem_v)
            + b" /FontFile2 "
        )  # fmt: skip
        return dataclasses.replace(self, dictionary_head=dictionary_head, descriptor_head=descriptor_head)

    def file_stream_header(self, length: int) -> bytes:
        return b"<< /Length %d /Length1 %d /Filter /FlateDecode >>" % (length, len(self.program))


def _source() -> bytes:
    return (files("fontpkg_noto_sans") / "files" / "NotoSans[wdth,wght].ttf").read_bytes()


def _tag(program: bytes) -> str:
    digest = hashlib.sha256(program).digest()
    return "".join(chr(ord("A") + byte % 26) for byte in digest[:6])


def _build(resource: str, weight: int, style: str) -> EmbeddedFont:
    from fontTools import subset
    from fontTools.ttLib import TTFont
    from fontTools.varLib import instancer

    font = TTFont(io.BytesIO(_source()))
    for tag in DROPPED_TABLES:  # deleted unread: decoding the layout tables was 95% of the build
        if tag in font:
            del font[tag]
    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # keep the copyright and licence notice's ids
    options.drop_tables += list(DROPPED_TABLES)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=CHARACTERS)
    subsetter.subset(font)
    static = instancer.instantiateVariableFont(font, {"wght": weight, "wdth": 100})
    buffer = io.BytesIO()
    static.recalcTimestamp = False  # the same bytes (and subset tag) in every process, not the build time
    static.save(buffer)
    program = buffer.getvalue()
    static = TTFont(io.BytesIO(program))
    scale = 1000.0 / static["head"].unitsPerEm
    cmap = static.getBestCmap()
    metrics = static["hmtx"].metrics
    widths = {char: round(metrics[cmap[ord(char)]][0] * scale) for char in CHARACTERS if ord(char) in cmap}
    head, os2 = static["head"], static["OS/2"]
    return EmbeddedFont(
        resource=resource,
        base_font=f"{_tag(program)}+NotoSans-{style}",
        program=program,
        compressed=zlib.compress(program, 9),
        widths=widths,
        bbox=(round(head.xMin * scale), round(head.yMin * scale), round(head.xMax * scale), round(head.yMax * scale)),
        ascent=round(os2.sTypoAscender * scale),
        descent=round(os2.sTypoDescender * scale),
        cap_height=round(getattr(os2, "sCapHeight", 714) * scale),
        stem_v=80 if weight < 600 else 140,
    ).with_heads()


@functools.cache
def stamp_fonts() -> tuple[EmbeddedFont, EmbeddedFont]:
    """(Regular as /FH, Bold as /FB), built once per process."""
    return _build("FH", 400, "Regular"), _build("FB", 700, "Bold")


def text_width(text: str, font: EmbeddedFont, size: float) -> float:
    """Width of ``text`` in user units at font ``size`` (unknown characters count as 600)."""
    return sum(font.widths.get(char, 600) for char in text) * size / 1000.0
