from __future__ import annotations

import io
import zlib

import pikepdf
import pytest

from issuer import errors
from issuer.pdf import inspect_document
from tests.fixtures.pdfs import factory

MAX = 20 * 1024 * 1024


def _encrypted(encryption: pikepdf.Encryption) -> bytes:
    pdf = pikepdf.open(io.BytesIO(factory.text_pdf()))
    buffer = io.BytesIO()
    pdf.save(buffer, encryption=encryption)
    return buffer.getvalue()


def test_describes_a_plain_document(text_a4: bytes) -> None:
    info = inspect_document(text_a4, max_bytes=MAX)
    assert info.page_count == 1
    assert info.pdf_version == "1.7"
    assert not info.encrypted and not info.is_signed and not info.uses_xref_stream
    page = info.pages[0]
    assert (round(page.width, 2), round(page.height, 2), page.rotate) == (595.28, 841.89, 0)
    assert len(info.sha256) == 64


def test_xref_stream_and_rotation_are_reported() -> None:
    info = inspect_document(factory.text_pdf(rotate=90, xref_stream=True), max_bytes=MAX)
    assert info.uses_xref_stream
    assert info.pages[0].rotate == 90
    assert round(info.pages[0].width, 2) == 841.89  # as displayed


def test_not_a_pdf() -> None:
    with pytest.raises(errors.NotAPdf):
        inspect_document(b"GIF89a not a pdf at all", max_bytes=MAX)


def test_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(errors.DocumentTooLarge) as caught:
        inspect_document(b"x" * 2000, max_bytes=1000)
    assert caught.value.http_status == 413


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_documents_are_unreadable(text_a4: bytes, cut: float) -> None:
    with pytest.raises(errors.DocumentUnreadable):
        inspect_document(text_a4[: int(len(text_a4) * cut)], max_bytes=MAX)


def test_document_needing_xref_repair_is_unreadable(text_a4: bytes) -> None:
    shifted = text_a4[:15] + b"% an inserted comment line shifting every offset\n" + text_a4[15:]
    with pytest.raises(errors.DocumentUnreadable):
        inspect_document(shifted, max_bytes=MAX)


def test_garbage_after_header_is_unreadable() -> None:
    with pytest.raises(errors.DocumentUnreadable):
        inspect_document(b"%PDF-1.7\n" + bytes(range(256)) * 20, max_bytes=MAX)


def test_aes256_without_password_then_wrong_then_right() -> None:
    data = _encrypted(pikepdf.Encryption(owner="owner-pw", user="user-pw", R=6))
    with pytest.raises(errors.DocumentEncrypted):
        inspect_document(data, max_bytes=MAX)
    with pytest.raises(errors.WrongPassword):
        inspect_document(data, password="nope", max_bytes=MAX)
    info = inspect_document(data, password="user-pw", max_bytes=MAX)
    assert info.encrypted and info.encryption is not None and info.encryption.method == "AES-256"


def test_rc4_is_refused_even_with_the_right_password() -> None:
    data = _encrypted(pikepdf.Encryption(owner="o", user="u", R=2, aes=False, metadata=False))
    with pytest.raises(errors.EncryptionNotSupported):
        inspect_document(data, password="u", max_bytes=MAX)


def test_decompression_bomb_is_never_inflated() -> None:
    data = factory.bomb_pdf(64 * 1024 * 1024)
    assert len(data) < 1024 * 1024
    info = inspect_document(data, max_bytes=MAX)
    assert info.page_count == 1


def test_page_tree_loop_terminates_with_an_error() -> None:
    data = factory.raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        }
    )
    with pytest.raises(errors.DocumentUnreadable):
        inspect_document(data, max_bytes=MAX)


def test_huge_declared_page_count_is_refused_before_walking_the_tree() -> None:
    data = factory.raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 100000000 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        }
    )
    with pytest.raises(errors.TooManyPages):
        inspect_document(data, max_bytes=MAX)


def test_too_many_real_pages() -> None:
    with pytest.raises(errors.TooManyPages):
        inspect_document(factory.text_pdf(pages=10), max_bytes=MAX, max_pages=5)


def test_inherited_boxes_and_crop_box() -> None:
    data = factory.raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 600 800] /Rotate 270 >>",
            3: b"<< /Type /Page /Parent 2 0 R /CropBox [10 20 590 780] >>",
        }
    )
    page = inspect_document(data, max_bytes=MAX).pages[0]
    assert page.rotate == 270
    assert page.visible.as_tuple() == (10, 20, 590, 780)
    assert (page.width, page.height) == (760, 580)


def test_content_stream_bomb_helper_really_is_a_bomb() -> None:
    data = factory.bomb_pdf(8 * 1024 * 1024)
    start = data.index(b"stream\n") + len(b"stream\n")
    inflated = zlib.decompressobj().decompress(data[start:], 16 * 1024 * 1024)
    assert len(inflated) == 8 * 1024 * 1024


def test_the_parent_chain_takes_each_attribute_from_the_nearest_node_and_stops_on_a_loop() -> None:
    from issuer.pdf.inspect import inherited, page_attributes

    pdf = pikepdf.new()
    root = pdf.make_indirect(pikepdf.Dictionary(Rotate=90, MediaBox=[0, 0, 1, 1]))
    middle = pdf.make_indirect(pikepdf.Dictionary(Parent=root, CropBox=[0, 0, 5, 5]))
    page = pdf.make_indirect(pikepdf.Dictionary(Parent=middle, MediaBox=[0, 0, 10, 10]))
    found = page_attributes(page)
    assert [float(v) for v in found["/MediaBox"]] == [0, 0, 10, 10]  # the page's own, not the root's
    assert [float(v) for v in found["/CropBox"]] == [0, 0, 5, 5]
    assert int(found["/Rotate"]) == 90
    assert int(inherited(page, "/Rotate")) == 90

    root["/Parent"] = page  # a loop: page -> middle -> root -> page
    assert inherited(page, "/Missing") is None
    assert "/Missing" not in page_attributes(page) and len(page_attributes(page)) == 3
    del page["/MediaBox"], root["/MediaBox"], root["/Rotate"]
    assert set(page_attributes(page)) == {"/CropBox"}  # the walk ends where the loop closes
