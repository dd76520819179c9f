from __future__ import annotations

import dataclasses

import pytest

from issuer import errors
from issuer.pdf import CPNS_PROFILE, DEFAULT_PROFILE, check_placement, check_profile, inspect_document
from tests.fixtures.pdfs import factory

MAX = 20 * 1024 * 1024
LETTER = (612.0, 792.0)


def _info(data: bytes):
    return inspect_document(data, max_bytes=MAX)


def test_cpns_accepts_a4_pdf_17(text_a4: bytes) -> None:
    check_profile(_info(text_a4), CPNS_PROFILE)


def test_cpns_refuses_letter_size() -> None:
    with pytest.raises(errors.PageSizeNotAllowed):
        check_profile(_info(factory.text_pdf(size=LETTER)), CPNS_PROFILE)


def test_cpns_accepts_a4_landscape_and_rotated() -> None:
    check_profile(_info(factory.text_pdf(size=(841.89, 595.276))), CPNS_PROFILE)
    check_profile(_info(factory.text_pdf(rotate=90)), CPNS_PROFILE)


def test_old_unsigned_versions_are_accepted_by_every_profile() -> None:
    info = _info(factory.text_pdf(version="1.4"))
    assert info.pdf_version == "1.4"
    check_profile(info, CPNS_PROFILE)  # the signer upgrades it, so the stamped file is 1.7
    check_profile(info, DEFAULT_PROFILE)


def test_cpns_refuses_an_old_signed_document(other_signer_files) -> None:
    """A signed document cannot be rewritten to a newer version without breaking its signature."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = signers.SimpleSigner.load(str(other_signer_files["key"]), str(other_signer_files["cert"]))
    writer = IncrementalPdfFileWriter(io.BytesIO(factory.text_pdf(version="1.4")))
    spec = fields.SigFieldSpec("OtherParty", on_page=0, box=(100, 100, 250, 160))
    signed = signers.PdfSigner(signers.PdfSignatureMetadata(field_name="OtherParty"), signer, new_field_spec=spec)
    info = _info(signed.sign_pdf(writer).getvalue())
    # pyHanko itself writes /Version 1.7 into the catalog; older signers (and ours before 1.7) do not
    info = dataclasses.replace(info, pdf_version="1.4")
    assert info.is_signed
    with pytest.raises(errors.PdfVersionTooOld):
        check_profile(info, CPNS_PROFILE)
    check_profile(info, DEFAULT_PROFILE)


def test_cpns_refuses_more_than_800_kb() -> None:
    info = _info(factory.text_pdf(pages=400, compress_streams=False))
    assert info.size > 800 * 1024
    with pytest.raises(errors.DocumentTooLarge):
        check_profile(info, CPNS_PROFILE)


def test_page_out_of_range(text_a4: bytes) -> None:
    with pytest.raises(errors.PageOutOfRange):
        check_placement(_info(text_a4), 2, (10, 10, 110, 110))
    with pytest.raises(errors.PageOutOfRange):
        check_placement(_info(text_a4), 0, (10, 10, 110, 110))


@pytest.mark.parametrize("box", [(110, 10, 10, 110), (10, 110, 110, 10), (10, 10, 10, 110), (0, 0, 5, 5)])
def test_invalid_boxes(text_a4: bytes, box: tuple[float, float, float, float]) -> None:
    with pytest.raises(errors.InvalidStampBox):
        check_placement(_info(text_a4), 1, box)


@pytest.mark.parametrize("box", [(-1, 10, 99, 110), (500, 10, 600, 110), (10, 800, 110, 900)])
def test_boxes_outside_the_page(text_a4: bytes, box: tuple[float, float, float, float]) -> None:
    with pytest.raises(errors.StampOutOfBounds):
        check_placement(_info(text_a4), 1, box)


def test_box_on_the_edge_is_fine(text_a4: bytes) -> None:
    rect = check_placement(_info(text_a4), 1, (495.276, 0, 595.276, 100))
    assert rect.as_tuple() == (495.276, 0, 595.276, 100)


def test_rotated_page_uses_displayed_coordinates() -> None:
    info = _info(factory.text_pdf(rotate=90))
    # landscape as displayed: x up to 841.89 is on the page
    rect = check_placement(info, 1, (700, 20, 800, 120))
    assert tuple(round(v, 3) for v in rect.as_tuple()) == (475.276, 700, 575.276, 800)
    with pytest.raises(errors.StampOutOfBounds):
        check_placement(info, 1, (20, 700, 120, 800))  # would be on the page only if unrotated


@pytest.mark.parametrize(
    ("rotate", "expected"),
    [(0, (10, 20, 110, 120)), (180, (485.276, 721.89, 585.276, 821.89)), (270, (20, 731.89, 120, 831.89))],
)
def test_other_rotations(rotate: int, expected: tuple[float, ...]) -> None:
    rect = check_placement(_info(factory.text_pdf(rotate=rotate)), 1, (10, 20, 110, 120))
    assert tuple(round(v, 3) for v in rect.as_tuple()) == expected
