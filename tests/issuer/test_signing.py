from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import pikepdf
import pytest
import zxingcpp
from asn1crypto import cms
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm

from issuer import errors
from issuer.pdf import DEFAULT_PROFILE, inspect_document
from issuer.serials import new_serial
from issuer.signing import verify_pdf
from issuer.signing.cms import CmsTemplate
from tests.fixtures.pdfs import factory
from tests.issuer.conftest import SIGNED_AT, run_tool, stamp
from tests.issuer.rendering import assert_qr_everywhere

MAX = 20 * 1024 * 1024
FINAL = dataclasses.replace(DEFAULT_PROFILE, certification="no_changes")  # cpns's certification, any page


def _check_with_tools(path, password: str | None = None) -> None:
    password_args = [] if password is None else [f"--password={password}"]
    result = run_tool("qpdf", *password_args, "--check", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors" in result.stdout
    pdfsig = ["pdfsig", str(path)] if password is None else ["pdfsig", "-upw", password, str(path)]
    result = run_tool(*pdfsig)
    assert result.stdout.count("Signature is Valid") == result.stdout.count("Signature #"), result.stdout


@pytest.mark.parametrize("xref_stream", [False, True], ids=["classic-xref", "xref-stream"])
def test_roundtrip_validates_everywhere(engine, dev_keys, tmp_path, xref_stream: bool) -> None:
    original = factory.text_pdf(xref_stream=xref_stream)
    result = stamp(engine, original, rules=FINAL)
    assert result.pdf.startswith(original)
    assert result.sha256_in == hashlib.sha256(original).hexdigest()
    assert result.sha256_out == hashlib.sha256(result.pdf).hexdigest()
    assert result.certification and result.upgraded_to is None

    report = verify_pdf(result.pdf, dev_keys.trust_roots)
    assert report.valid
    (signature,) = report.signatures
    assert signature.serial == result.serial
    assert signature.reason == f"[{result.serial}] e-Meterai Surat Pernyataan"
    assert signature.docmdp == 1 and signature.covers_whole_document and not signature.changes_allowed
    assert signature.signing_time == SIGNED_AT
    assert "e-Meterai Development Signing" in signature.signer_subject

    after = inspect_document(result.pdf, max_bytes=MAX)
    assert after.uses_xref_stream == xref_stream
    assert after.forbids_changes
    path = tmp_path / "stamped.pdf"
    path.write_bytes(result.pdf)
    _check_with_tools(path)


def test_untrusted_roots_make_it_invalid(engine, text_a4) -> None:
    from issuer.signing.keys import make_root_ca

    _key, stranger = make_root_ca("Stranger")
    report = verify_pdf(stamp(engine, text_a4).pdf, [stranger])
    assert not report.valid and report.signatures[0].intact and not report.signatures[0].trusted


def test_tampering_is_detected(engine, dev_keys, text_a4) -> None:
    stamped = bytearray(stamp(engine, text_a4).pdf)
    position = stamped.index(b"Surat Pernyataan - halaman 1") if b"halaman" in stamped else 200
    stamped[position] ^= 0x01
    report = verify_pdf(bytes(stamped), dev_keys.trust_roots)
    assert not report.valid


def test_stamp_is_visible_upright_and_scannable_on_rotated_page(engine, tmp_path) -> None:
    result = stamp(engine, factory.text_pdf(rotate=90), box=(700, 20, 800, 120))
    with pikepdf.open(io.BytesIO(result.pdf)) as pdf:
        widget = pdf.pages[0].Annots[-1]
        assert [round(float(v), 3) for v in widget.Rect] == [475.276, 700, 575.276, 800]
        assert int(widget.F) == 4
        assert pdf.Root.AcroForm.SigFlags == 3
    path = tmp_path / "rotated.pdf"
    path.write_bytes(result.pdf)
    run_tool("pdftoppm", "-r", "150", "-png", "-singlefile", str(path), str(tmp_path / "page"))
    with Image.open(tmp_path / "page.png") as image:
        assert image.width > image.height  # displayed in landscape
        found = zxingcpp.read_barcodes(image.convert("L"))
    assert [b.text for b in found] == [result.verification_url]
    assert found[0].orientation == 0  # upright for the reader


def test_old_unsigned_pdf_comes_out_as_17(engine, dev_keys, tmp_path) -> None:
    original = factory.text_pdf(version="1.4")
    result = stamp(engine, original)
    assert result.upgraded_to == "1.7"
    assert result.pdf.startswith(b"%PDF-1.7")
    assert result.pdf[8 : len(original)] == original[8:]  # only the header digits changed
    with pikepdf.open(io.BytesIO(result.pdf)) as pdf:
        assert pdf.pdf_version == "1.7"
        assert pdf.Root.Version == "/1.7"
    assert inspect_document(result.pdf, max_bytes=MAX).pdf_version == "1.7"
    assert verify_pdf(result.pdf, dev_keys.trust_roots).valid
    path = tmp_path / "upgraded.pdf"
    path.write_bytes(result.pdf)
    _check_with_tools(path)


def _sign_with_pyhanko(data: bytes, files, *, certify: bool = False, docmdp: MDPPerm | None = None) -> bytes:
    signer = signers.SimpleSigner.load(str(files["key"]), str(files["cert"]), ca_chain_files=(str(files["root"]),))
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    meta = signers.PdfSignatureMetadata(
        field_name="OtherParty", certify=certify, docmdp_permissions=docmdp or MDPPerm.FILL_FORMS
    )
    spec = fields.SigFieldSpec("OtherParty", on_page=0, box=(100, 100, 250, 160))
    output = signers.PdfSigner(meta, signer, new_field_spec=spec).sign_pdf(writer)
    return output.getvalue()


def test_earlier_signature_stays_valid(engine, dev_keys, other_signer_files, tmp_path) -> None:
    from cryptography import x509

    signed = _sign_with_pyhanko(factory.text_pdf(), other_signer_files)
    other_root = x509.load_pem_x509_certificate(other_signer_files["root"].read_bytes())
    info = inspect_document(signed, max_bytes=MAX)
    assert info.is_signed and not info.forbids_changes
    result = stamp(engine, signed)
    assert result.pdf.startswith(signed) and not result.certification

    report = verify_pdf(result.pdf, [*dev_keys.trust_roots, other_root])
    first, ours = report.signatures
    assert first.field_name == "OtherParty" and first.valid and first.changes_allowed
    assert not first.covers_whole_document
    assert ours.valid and ours.covers_whole_document and ours.serial == result.serial
    path = tmp_path / "countersigned.pdf"
    path.write_bytes(result.pdf)
    _check_with_tools(path)


def test_stamp_over_an_existing_signature_is_refused(engine, other_signer_files) -> None:
    signed = _sign_with_pyhanko(factory.text_pdf(), other_signer_files)
    with pytest.raises(errors.StampOverlapsSignature):
        stamp(engine, signed, box=(200, 120, 300, 220))
    stamp(engine, signed, box=(250, 100, 350, 200))  # touching the edge is fine


def test_certified_no_changes_document_is_refused(engine, other_signer_files) -> None:
    certified = _sign_with_pyhanko(
        factory.text_pdf(), other_signer_files, certify=True, docmdp=MDPPerm.NO_CHANGES
    )
    info = inspect_document(certified, max_bytes=MAX)
    assert info.forbids_changes and info.signatures[0].is_certification
    with pytest.raises(errors.DocumentAlreadyFinal):
        stamp(engine, certified)


def test_a_final_profile_stamp_makes_the_document_final(engine, text_a4) -> None:
    stamped = stamp(engine, text_a4, rules=FINAL).pdf
    with pytest.raises(errors.DocumentAlreadyFinal):
        stamp(engine, stamped, box=(20, 20, 120, 120))
    with pytest.raises(errors.DocumentAlreadyFinal):
        stamp(engine, stamped, box=(20, 20, 120, 120), rules=FINAL)


def test_final_stamp_after_another_signature_locks_every_field(engine, dev_keys, other_signer_files) -> None:
    signed = _sign_with_pyhanko(factory.text_pdf(), other_signer_files)
    result = stamp(engine, signed, rules=FINAL)
    assert not result.certification
    *_, ours = verify_pdf(result.pdf, dev_keys.trust_roots).signatures
    assert not ours.changes_allowed  # the field lock /P 1
    with pytest.raises(errors.DocumentAlreadyFinal):
        stamp(engine, result.pdf, box=(20, 20, 120, 120))


CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs" / "corpus"


def _second_stamp_source(name: str) -> bytes:
    if name.startswith("factory"):
        return factory.text_pdf(version="1.4", xref_stream=name.endswith("xref-stream"))
    return (CORPUS / name).read_bytes()  # real producers: LibreOffice (classic xref), pdfTeX (xref stream)


@pytest.mark.parametrize(
    "source", ["factory-classic-xref", "factory-xref-stream", "libreoffice-writer.pdf", "pdflatex-a4.pdf"]
)
def test_default_profile_allows_a_second_e_meterai(engine, dev_keys, tmp_path, source: str) -> None:
    """Two parties each stamp one contract: the second stamp is an incremental update after the
    first, the first is an approval signature (no DocMDP) and both validate everywhere."""
    original = _second_stamp_source(source)
    first = stamp(engine, original, rules=DEFAULT_PROFILE)
    assert not first.certification and first.upgraded_to == ("1.7" if original[5:8] < b"1.7" else None)
    assert b"/DocMDP" not in first.pdf[len(original) :] and b"/Lock" not in first.pdf[len(original) :]
    second = stamp(engine, first.pdf, box=(300, 60, 400, 160), rules=DEFAULT_PROFILE)
    assert second.pdf.startswith(first.pdf) and second.upgraded_to is None
    assert second.serial != first.serial

    report = verify_pdf(second.pdf, dev_keys.trust_roots)
    assert report.valid and report.serials == (first.serial, second.serial)
    earlier, later = report.signatures
    assert earlier.valid and earlier.later_changes_ok and earlier.changes_allowed and earlier.docmdp is None
    assert not earlier.covers_whole_document and earlier.modification_level == "FORM_FILLING"
    assert later.valid and later.covers_whole_document and later.changes_allowed
    path = tmp_path / "two-stamps.pdf"
    path.write_bytes(second.pdf)
    _check_with_tools(path)
    result = run_tool("pdfsig", str(path))
    assert result.stdout.count("Signature is Valid") == 2, result.stdout
    assert_qr_everywhere(path, tmp_path, (420, 60, 520, 160), first.verification_url)
    assert_qr_everywhere(path, tmp_path, (300, 60, 400, 160), second.verification_url)
    # and a final (cpns-like) stamp can still come last
    third = stamp(engine, second.pdf, box=(180, 60, 280, 160), rules=FINAL)
    assert not third.certification and verify_pdf(third.pdf, dev_keys.trust_roots).valid


def test_another_party_can_sign_after_the_e_meterai(engine, dev_keys, other_signer_files, tmp_path) -> None:
    from cryptography import x509

    stamped = stamp(engine, factory.text_pdf(), box=(420, 60, 520, 160), rules=DEFAULT_PROFILE).pdf
    countersigned = _sign_with_pyhanko(stamped, other_signer_files)
    other_root = x509.load_pem_x509_certificate(other_signer_files["root"].read_bytes())
    ours, theirs = verify_pdf(countersigned, [*dev_keys.trust_roots, other_root]).signatures
    assert ours.valid and ours.later_changes_ok and theirs.valid
    path = tmp_path / "countersigned-after.pdf"
    path.write_bytes(countersigned)
    _check_with_tools(path)


def test_changed_document_is_refused(engine, text_a4) -> None:
    info = inspect_document(text_a4, max_bytes=MAX)
    with pytest.raises(errors.DocumentChanged):
        engine.stamp(
            text_a4 + b"\n", info=info, page=1, box=(20, 20, 120, 120), serial=new_serial(),
            reason="x", location="y", signed_at=SIGNED_AT,
        )  # fmt: skip


@pytest.mark.parametrize("revision", [4, 6], ids=["aes128", "aes256"])
def test_encrypted_document_stays_encrypted_and_valid(engine, dev_keys, tmp_path, revision: int) -> None:
    buffer = io.BytesIO()
    with pikepdf.open(io.BytesIO(factory.text_pdf())) as pdf:
        pdf.save(buffer, encryption=pikepdf.Encryption(owner="owner-pw", user="user-pw", R=revision))
    original = buffer.getvalue()
    result = stamp(engine, original, password="user-pw")
    assert result.pdf.startswith(original)
    with pytest.raises(errors.DocumentEncrypted):
        inspect_document(result.pdf, max_bytes=MAX)
    info = inspect_document(result.pdf, password="user-pw", max_bytes=MAX)
    assert info.encrypted and info.signatures[0].field_name == f"eMeterai_{result.serial}"
    report = verify_pdf(result.pdf, dev_keys.trust_roots, password="user-pw")
    assert report.valid and report.serials == (result.serial,)
    path = tmp_path / "encrypted.pdf"
    path.write_bytes(result.pdf)
    _check_with_tools(path, password="user-pw")


def test_multi_page_document_stamped_on_last_page(engine, dev_keys) -> None:
    result = stamp(engine, factory.text_pdf(pages=10), page=10)
    assert verify_pdf(result.pdf, dev_keys.trust_roots).valid
    with pikepdf.open(io.BytesIO(result.pdf)) as pdf:
        assert "/Annots" in pdf.pages[9] and "/Annots" not in pdf.pages[0]


def test_cms_template_is_canonical_der(dev_keys) -> None:
    template = CmsTemplate(dev_keys)
    digest = hashlib.sha256(b"document").digest()
    der = template.build(digest)
    parsed = cms.ContentInfo.load(der)
    assert parsed.dump(force=True) == der
    signer_info = parsed["content"]["signer_infos"][0]
    attributes = {attr["type"].native: attr for attr in signer_info["signed_attrs"]}
    assert set(attributes) == {"content_type", "message_digest", "signing_certificate_v2"}
    assert attributes["message_digest"]["values"][0].native == digest
    assert template.size_without_timestamp >= len(der)


def test_stamp_fonts_are_embedded_and_pdfa_identification_is_kept(engine, dev_keys, tmp_path) -> None:
    """PDF/A needs every font embedded: the stamp brings subsets of Noto Sans, and the file keeps its
    PDF/A identification (XMP) and output intent."""
    original = (CORPUS / "libreoffice-pdfa2b.pdf").read_bytes()
    result = stamp(engine, original)
    path = tmp_path / "pdfa.pdf"
    path.write_bytes(result.pdf)
    _check_with_tools(path)
    fonts = run_tool("pdffonts", str(path)).stdout.splitlines()[2:]
    ours = [line for line in fonts if "NotoSans" in line]
    assert len(ours) == 2 and all(line.split()[-5:-3] == ["yes", "yes"] for line in ours), fonts  # emb, sub
    assert all(" yes " in line for line in fonts), fonts  # every font on the page embedded
    with pikepdf.open(io.BytesIO(result.pdf)) as pdf:
        assert "/OutputIntents" in pdf.Root and "/Metadata" in pdf.Root
        with pdf.open_metadata() as xmp:
            assert xmp.pdfa_status == "2B"
        font = pdf.Root.AcroForm.Fields[-1].AP.N.Resources.Font.FB
        assert font.Subtype == "/TrueType" and "/FontFile2" in font.FontDescriptor
