"""``POST /api/v1/stamps`` as a client sends it: the multipart body, its limits, and what a refusal leaves.

Every refusal here must leave the wallet and the channel's jobs exactly as they were.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger.services import forget_cached_accounts
from gateway.http import parsers
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

pytestmark = pytest.mark.django_db

PLACEMENT = {"page": "1", "llx": "40", "lly": "40", "urx": "140", "ury": "140"}


@pytest.fixture
def customer_id(channels):
    from tenants.customers.models import Customer

    cid = funded_wallet(channel_id=channels["alpha"].pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=cid, external_ref=unique("c"), name="Uploader")
    return cid


def raw_body(fields: dict, files: dict, boundary: str = "b0undary") -> tuple[bytes, str]:
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += (value if isinstance(value, bytes) else str(value).encode()) + b"\r\n"
    for name, (filename, content) in files.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def send(client, body: bytes, content_type: str):
    return client.generic("POST", "/api/v1/stamps", body, content_type=content_type)


def unchanged(channels, customer_id) -> bool:
    from stamping.models import StampJob

    with schema_context("alpha"):
        jobs = StampJob.objects.filter(customer_id=customer_id).count()
    wallet = quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer_id)
    return jobs == 0 and wallet == {"available": 1, "held": 0, "used": 0}


def test_a_raw_multipart_body_is_accepted_and_holds_the_unit(client_for, channels, customer_id):
    body, ctype = raw_body({"customer": customer_id, **PLACEMENT, "reason": "Perjanjian sewa"},
                           {"document": ("kontrak sewa.pdf", text_pdf())})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["file_name"] == "kontrak sewa.pdf" and job["status"] == "queued" and job["unit"] == "held"
    assert job["queue"]["position"] >= 1 and job["queue"]["eta_seconds"] >= 1
    assert response["Location"] == f"/api/v1/stamps/{job['id']}"
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer_id) == {
        "available": 0, "held": 1, "used": 0,
    }
    fetched = client_for("alpha").get(response["Location"]).json()
    assert fetched["created_at"] == job["created_at"] and fetched["sha256"] == job["sha256"]


def test_a_body_larger_than_any_document_is_refused_before_it_is_read(client_for, channels, customer_id, settings):
    settings.STAMP_DEFAULT_MAX_BYTES = 2048
    document = b"%PDF-1.7\n" + b"0" * 90_000
    body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("big.pdf", document)})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 413
    assert response.json()["code"] == "document_too_large"
    assert response["Content-Type"] == "application/problem+json"
    assert unchanged(channels, customer_id)


def test_a_body_that_understates_its_length_is_still_cut_off(rf, settings):
    settings.STAMP_DEFAULT_MAX_BYTES = 1024
    body, ctype = raw_body({"customer": 1}, {"document": ("big.pdf", b"0" * 200_000)})
    request = rf.generic("POST", "/api/v1/stamps", body, content_type=ctype)
    request.META["CONTENT_LENGTH"] = "10"  # a lie: the stream carries more
    import io

    from issuer.errors import DocumentTooLarge

    with pytest.raises(DocumentTooLarge):
        parsers.SingleUploadParser().parse(io.BytesIO(body), ctype, {"request": request})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b'--b0undary\r\nContent-Disposition: form-data; name="customer"\r\n\r\n1',
            "multipart/form-data; boundary=b0undary",
        ),
        (b"no parts at all", "multipart/form-data; boundary=b0undary"),
        (b"--b0undary--\r\n", "multipart/form-data"),
        (b"--b0undary\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\n\xff\xfe\r\n--b0undary--\r\n",
         "multipart/form-data; boundary=b0undary"),
    ],
    ids=["truncated", "no-parts", "no-boundary", "not-utf8"],
)
def test_a_malformed_body_is_a_400_problem_and_changes_nothing(client_for, channels, customer_id, body, content_type):
    response = send(client_for("alpha"), body, content_type)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "malformed_request", response.json()
    assert response.json()["request_id"]
    assert unchanged(channels, customer_id)


def test_an_empty_file_input_is_a_missing_document(client_for, channels, customer_id):
    body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("", b"")})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 400
    assert "document" in response.json()["errors"]
    assert unchanged(channels, customer_id)


def test_field_errors_name_each_field(client_for, channels, customer_id):
    response = client_for("alpha").post(
        "/api/v1/stamps",
        {"customer": "x", **PLACEMENT, "llx": "nan", "document": SimpleUploadedFile("a.pdf", text_pdf())},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"customer", "llx"}
    assert unchanged(channels, customer_id)


@pytest.mark.parametrize("customer", ["999999999999", str(2**63 - 1)])
def test_an_unknown_customer_is_404_and_makes_no_wallet(client_for, channels, customer_id, customer):
    """Made-up customer ids must not make rows: the intake looks wallets up, never creates them."""
    from billing.ledger.models import Account

    wallets = Account.objects.filter(kind=Account.Kind.WALLET)
    before = wallets.count()
    body, ctype = raw_body({"customer": customer, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"
    assert wallets.count() == before


def test_another_channels_customer_is_not_found(client_for, channels, customer_id):
    body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    response = send(client_for("beta"), body, ctype)
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"
    assert unchanged(channels, customer_id)


def test_a_customer_id_past_the_database_range_is_a_field_error(client_for, channels, customer_id):
    body, ctype = raw_body({"customer": str(2**63), **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 400 and "customer" in response.json()["errors"]


def test_a_wallet_without_its_customer_is_not_found_and_holds_nothing(client_for, channels):
    """Only a customer of the channel can hold a unit, even where a wallet exists under that id."""
    orphan = funded_wallet(channel_id=channels["alpha"].pk, units=1)  # no Customer row
    body, ctype = raw_body({"customer": orphan, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
    response = send(client_for("alpha"), body, ctype)
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=orphan) == {
        "available": 1, "held": 0, "used": 0,
    }


def test_the_queue_position_comes_from_the_channels_backlog(
    client_for, channels, customer_id, django_capture_on_commit_callbacks
):
    from stamping import admission, lanes

    backlog = admission._key("backlog", "alpha")
    admission.client().set(backlog, 7)
    try:
        body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
        with django_capture_on_commit_callbacks(execute=True):
            response = send(client_for("alpha"), body, ctype)
        assert response.status_code == 202
        assert response.json()["queue"]["position"] == 8  # seven ahead of it
        assert lanes.flush_wakes()  # the process's waker thread counts it, off the request path
        assert int(admission.client().get(backlog)) == 8
    finally:
        admission.client().delete(backlog)
        # The callbacks ran although the test's transaction rolls back: account ids they cached are void.
        forget_cached_accounts()


def test_without_redis_a_stamp_is_still_taken_and_queued(client_for, channels, customer_id, settings):
    """Redis only advises (rate limits fall back in-process, the backlog is counted in the database):
    the stamp request must not fail with it."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    from gateway import ratelimit
    from stamping import admission, lanes

    ratelimit.reset_fallback_state()
    admission._client = None
    try:
        body, ctype = raw_body({"customer": customer_id, **PLACEMENT}, {"document": ("a.pdf", text_pdf())})
        response = send(client_for("alpha"), body, ctype)
    finally:
        lanes.flush_wakes()  # (a wake still pending would make its Redis client with the dead URL)
        admission._client = None
        ratelimit.reset_fallback_state()
    assert response.status_code == 202, response.content
    assert response.json()["queue"]["position"] >= 1
    assert quota.wallet_balance(channel_id=channels["alpha"].pk, customer_id=customer_id)["held"] == 1


def test_the_parsed_form_is_what_djangos_parser_gives(rf):
    """Repeated fields keep their order, files arrive whole, and the result is as immutable as Django's."""
    import io

    from django.http import QueryDict
    from django.http.multipartparser import MultiPartParser

    body, ctype = raw_body(
        {"customer": 7, "reason": "Kontrak", "page": "1"},
        {"document": ("a.pdf", text_pdf()), "extra": ("b.pdf", b"%PDF-1.4 second")},
    )
    body = body.replace(b"--b0undary--", b'--b0undary\r\nContent-Disposition: form-data; name="reason"\r\n\r\nlagi'
                        b"\r\n--b0undary--")
    request = rf.generic("POST", "/api/v1/stamps", body, content_type=ctype)
    ours = parsers.SingleUploadParser().parse(io.BytesIO(body), ctype, {"request": request})
    fields, files = MultiPartParser(request.META, io.BytesIO(body), request.upload_handlers).parse()

    assert isinstance(ours.data, QueryDict)
    assert {k: ours.data.getlist(k) for k in fields} == {k: fields.getlist(k) for k in fields}
    assert ours.data.getlist("reason") == ["Kontrak", "lagi"]
    for name in files:
        mine, theirs = ours.data[name], files[name]
        assert (mine.name, mine.read(), mine.content_type) == (theirs.name, theirs.read(), theirs.content_type)
    assert set(ours.data) == set(fields) | set(files)
    assert not ours.files
    with pytest.raises(AttributeError, match="immutable"):
        ours.data["customer"] = "8"
