"""The stamped PDF's download name comes from the uploaded file's name: it is quoted and encoded,
so a name cannot add parameters to Content-Disposition (header injection)."""

from __future__ import annotations

from email.message import Message

import pytest
from django_tenants.utils import schema_context

from stamping import services
from tests.billing.factories import funded_wallet
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db


def stamped_job(channel, file_name: str):
    from tenants.customers.models import Customer

    customer_id = funded_wallet(channel_id=channel.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=f"c-{customer_id}", name="Name Test")
        request = services.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0), file_name=file_name)
        job = services.request_stamp(channel=channel, customer_id=customer_id, request=request)
        return services.run_stamp_job(channel=channel, job_id=job.pk)


def disposition(header: str) -> Message:
    message = Message()
    message["Content-Disposition"] = header
    return message


@pytest.mark.parametrize(
    ("file_name", "stem"),
    [
        ('x"; filename="evil.exe"; y=".pdf', 'x"; filename="evil.exe"; y="'),
        ("surat\\perjanjian.pdf", "surat\\perjanjian"),
        ("perjanjian sewa ñ.pdf", "perjanjian sewa ñ"),
    ],
)
def test_the_download_name_is_the_uploaded_name_and_nothing_more(channels, client_for, file_name, stem):
    job = stamped_job(channels["alpha"], file_name)

    response = client_for("alpha").get(f"/api/v1/stamps/{job.pk}/document")

    assert response.status_code == 200
    parsed = disposition(response["Content-Disposition"])
    assert parsed.get_content_disposition() == "attachment"
    params = [name for name, _ in parsed.get_params(header="content-disposition")[1:]]
    assert params in (["filename"], ["filename*"])  # one name, no parameter smuggled in
    assert parsed.get_filename() == f"{stem}-{job.serial}.pdf"
