"""Placement help: the preview (a dry run with a rendering and a suggested box), ``box=auto``, and
whether a box covers what is printed on the page (``covers_content``).

The document is the newcomer's: a statement whose signature block - "Yang menyatakan," and the
signer's name - sits at the bottom right, exactly where the usual box (420, 60, 520, 160) lands.
"""

from __future__ import annotations

import base64
import io

import pikepdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context
from PIL import Image

from billing import quota
from issuer.models import Serial
from issuer.pdf.geometry import Rect
from stamping import services
from stamping.models import StampJob
from tests.billing.factories import funded_wallet, unique
from tests.issuer.rendering import pdfium_qr, poppler_qr

pytestmark = pytest.mark.django_db

USUAL_BOX = {"llx": "420", "lly": "60", "urx": "520", "ury": "160"}
# where the signature block is printed (points, the glyphs with a point or two around them)
SIGNATURE_BLOCK = Rect(418, 55, 520, 161)


def statement_pdf() -> bytes:
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595.276, 841.89))
    page.Resources = pikepdf.Dictionary(
        Font=pikepdf.Dictionary(F1=pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                      BaseFont=pikepdf.Name.Helvetica))
    )  # fmt: skip
    lines = " ".join(f"0 -16 Td (Baris pernyataan nomor {n} yang panjang sekali isinya.) Tj" for n in range(30))
    page.Contents = pdf.make_stream(
        b"BT /F1 16 Tf 72 780 Td (SURAT PERNYATAAN) Tj /F1 11 Tf " + lines.encode() + b" ET"
        b" BT /F1 12 Tf 420 150 Td (Yang menyatakan,) Tj ET"
        b" BT /F1 12 Tf 420 60 Td (Siti Rahmawati) Tj ET"
    )
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def customer_id(channels):
    from tenants.customers.models import Customer

    cid = funded_wallet(channel_id=channels["alpha"].pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=cid, external_ref=unique("c"), name="Pemohon")
    return cid


def untouched(channels, customer_id) -> bool:
    with schema_context("alpha"):
        jobs = StampJob.objects.filter(customer_id=customer_id).count()
    wallet = quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer_id)
    return jobs == 0 and wallet == {"available": 1, "held": 0, "used": 0} and Serial.objects.count() == 0


def preview(client, **fields):
    return client.post(
        "/api/v1/stamps/preview", {"document": SimpleUploadedFile("pernyataan.pdf", statement_pdf()), **fields}
    )


def test_preview_shows_the_page_and_suggests_an_empty_place(client_for, channels, customer_id):
    response = preview(client_for("alpha"), **USUAL_BOX)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["pages"] == 1 and body["page"] == 1
    assert body["page_sizes"] == [{"page": 1, "width": 595.28, "height": 841.89, "rotate": 0}]
    image = body["image"]
    assert image["media_type"] == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(image["data"]))) as png:
        assert png.format == "PNG" and (png.width, png.height) == (image["width"], image["height"])
        assert 595 <= png.width <= 596 and 841 <= png.height <= 842  # 72 dpi: a pixel a point
    # the usual box lands on the signature block: said so
    assert body["box"] == [420.0, 60.0, 520.0, 160.0] and body["covers_content"] is True
    suggested = Rect(*body["suggested_box"])
    assert body["suggested_box_covers_content"] is False
    assert (suggested.width, suggested.height) == (100, 100)
    assert not suggested.overlaps(SIGNATURE_BLOCK)
    assert suggested.urx <= 595.276 and suggested.lly >= 0
    assert untouched(channels, customer_id)  # a dry run holds and charges nothing


def test_preview_of_an_empty_spot_says_it_covers_nothing(client_for, channels, customer_id):
    body = preview(client_for("alpha"), llx="300", lly="180", urx="400", ury="270").json()
    assert body["covers_content"] is False


def test_preview_refusals_keep_their_codes_and_charge_nothing(client_for, channels, customer_id):
    response = preview(client_for("alpha"), page="3")
    assert (response.status_code, response.json()["code"]) == (422, "page_out_of_range")
    assert response["Content-Type"].startswith("application/problem+json")
    response = preview(client_for("alpha"), llx="560", lly="60", urx="660", ury="160")
    assert (response.status_code, response.json()["code"]) == (422, "stamp_out_of_bounds")
    response = client_for("alpha").post("/api/v1/stamps/preview", {"document": SimpleUploadedFile("a.pdf", b"hi")})
    assert (response.status_code, response.json()["code"]) == (415, "not_a_pdf")
    assert untouched(channels, customer_id)


def test_box_auto_stamps_the_empty_place_and_the_stamp_reads_everywhere(client_for, channels, customer_id, tmp_path):
    suggested = preview(client_for("alpha")).json()["suggested_box"]
    response = client_for("alpha").post(
        "/api/v1/stamps",
        {"customer": customer_id, "box": "auto", "document": SimpleUploadedFile("pernyataan.pdf", statement_pdf())},
    )
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["box"] == suggested and job["covers_content"] is False
    with schema_context("alpha"):
        done = services.run_stamp_job(channel=channels["alpha"], job_id=job["id"])
        assert done.status == "stamped"
        pdf = client_for("alpha").get(f"/api/v1/stamps/{job['id']}/document").content
    path = tmp_path / "stamped.pdf"
    path.write_bytes(pdf)
    url = f"/{done.serial}"
    # the QR read back from the box the issuer chose, rendered by poppler and by PDFium
    box = tuple(suggested)
    assert [text[-len(url) :] for text in poppler_qr(path, tmp_path, box)] == [url]
    assert [text[-len(url) :] for text in pdfium_qr(pdf, box)] == [url]


def test_box_auto_and_coordinates_together_are_a_field_error(client_for, channels, customer_id):
    response = client_for("alpha").post(
        "/api/v1/stamps",
        {"customer": customer_id, "box": "auto", **USUAL_BOX,
         "document": SimpleUploadedFile("pernyataan.pdf", statement_pdf())},
    )  # fmt: skip
    assert response.status_code == 400 and "box" in response.json()["errors"]
    assert untouched(channels, customer_id)


def test_a_stamp_without_a_box_is_still_refused(client_for, channels, customer_id):
    response = client_for("alpha").post(
        "/api/v1/stamps", {"customer": customer_id, "document": SimpleUploadedFile("p.pdf", statement_pdf())}
    )
    assert response.status_code == 400 and set(response.json()["errors"]) == {"llx", "lly", "urx", "ury"}
    assert untouched(channels, customer_id)


def test_qr_helpers_read_nothing_where_there_is_no_stamp(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(statement_pdf())
    box = (420.0, 60.0, 520.0, 160.0)
    assert poppler_qr(path, tmp_path, box) == [] and pdfium_qr(statement_pdf(), box) == []


def test_a_damaged_upload_is_accepted_and_said_to_be_repaired(client_for, channels, customer_id):
    data = statement_pdf()
    damaged = data.replace(b"\n", b"\n% a line a mail gateway added\n", 1)
    response = client_for("alpha").post(
        "/api/v1/stamps", {"customer": customer_id, **USUAL_BOX, "document": SimpleUploadedFile("d.pdf", damaged)}
    )
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["repaired"] is True and "covers_content" not in job
    with schema_context("alpha"):
        done = services.run_stamp_job(channel=channels["alpha"], job_id=job["id"])
    assert done.status == "stamped" and Serial.objects.get(serial=done.serial).repaired


def test_a_damaged_signed_upload_is_refused_and_charges_nothing(client_for, channels, customer_id):
    from tests.issuer.test_repair import damaged

    response = client_for("alpha").post(
        "/api/v1/stamps",
        {"customer": customer_id, **USUAL_BOX,
         "document": SimpleUploadedFile("signed.pdf", damaged("pyhanko-signed.pdf"))},
    )  # fmt: skip
    assert response.status_code == 422 and response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "document_unreadable" and "signature" in response.json()["detail"]
    assert untouched(channels, customer_id)
