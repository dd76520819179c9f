"""The stamp's embedded fonts: the same bytes whenever and wherever they are built."""

from fontTools.ttLib.tables import _h_e_a_d

from issuer.stamp import fonts


def test_a_later_build_gives_the_same_font_program_and_subset_tag(monkeypatch):
    first = fonts._build("FB", 700, "Bold")
    real_now = _h_e_a_d.timestampNow
    monkeypatch.setattr(_h_e_a_d, "timestampNow", lambda: real_now() + 86_400)  # built a day later
    later = fonts._build("FB", 700, "Bold")
    assert later.program == first.program
    assert later.base_font == first.base_font


def test_the_subset_keeps_every_character_a_stamp_uses_and_no_layout_tables():
    regular, bold = fonts.stamp_fonts()
    for font in (regular, bold):
        assert set(fonts.CHARACTERS) <= set(font.widths)
        assert all(width > 0 for char, width in font.widths.items() if char != " ")
        program = font.program
        directory = program[12 : 12 + 16 * int.from_bytes(program[4:6], "big")]
        tags = {directory[i : i + 4].decode("ascii") for i in range(0, len(directory), 16)}
        assert not tags & set(fonts.DROPPED_TABLES)
        assert {"glyf", "hmtx", "cmap"} <= tags
