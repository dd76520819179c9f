"""A body over its path's limit is refused from Content-Length before a byte of it is read, on every
path that takes a body; the public /verify page is rate limited before CSRF parses its form."""

from __future__ import annotations

import secrets

import pytest
from django.test import Client

from gateway import middleware, ratelimit

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
ISSUER = "issuer.test"


class CountingInput:
    """A ``wsgi.input`` of ``size`` bytes, made as they are read (a 120 MB body costs nothing), that
    counts how many bytes anything read from it."""

    def __init__(self, size: int):
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        self.read_bytes += n
        return b"x" * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(n)


@pytest.fixture(autouse=True)
def _no_discard(monkeypatch):
    """The request id middleware reads off an unread body after the answer (so a client still sending
    gets it); off here, so that the count is what the gateway read to decide."""
    monkeypatch.setattr(middleware, "UNREAD_BODY_DISCARD_LIMIT", -1)


def post_counting(client: Client, path: str, size: int, content_type: str = "multipart/form-data; boundary=b"):
    body = CountingInput(size)
    response = client.generic(
        "POST", path, b"", content_type=content_type, **{"wsgi.input": body, "CONTENT_LENGTH": str(size)}
    )
    return response, body


@pytest.mark.parametrize(
    ("host", "path", "size", "code"),
    [
        ("alpha", "/api/v1/stamps", 60 * MB, "document_too_large"),
        ("alpha", "/api/v1/batches", 120 * MB, "document_too_large"),
        (None, "/api/v1/verify", 60 * MB, "document_too_large"),
        (None, "/verify", 60 * MB, "document_too_large"),
        ("alpha", "/api/v1/customers", 2 * MB, "request_too_large"),
        ("alpha", "/api/v1/orders", 2 * MB, "request_too_large"),
        ("alpha", "/api/v1/payments/simulator/webhook", 2 * MB, "request_too_large"),
        ("alpha", "/portal/login/", 2 * MB, "request_too_large"),
    ],
)
def test_an_oversized_body_is_refused_before_it_is_read(client_for, host, path, size, code):
    response, body = post_counting(client_for(host), path, size)

    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["request_id"] == response["X-Request-Id"]
    assert f"{size} bytes" in problem["detail"]
    assert body.read_bytes == 0


def test_the_limits_come_from_settings(client_for, settings):
    settings.STAMP_BATCH_MAX_BYTES = 10_000
    settings.REQUEST_MAX_BYTES = 1_000
    settings.STAMP_DEFAULT_MAX_BYTES = 5_000

    batch, read = post_counting(client_for("alpha"), "/api/v1/batches", 10_001)
    assert (batch.status_code, batch.json()["code"], read.read_bytes) == (413, "document_too_large", 0)
    customers, read = post_counting(client_for("alpha"), "/api/v1/customers", 1_001, "application/json")
    assert (customers.status_code, customers.json()["code"], read.read_bytes) == (413, "request_too_large", 0)
    # A document may carry STAMP_DEFAULT_MAX_BYTES plus its form fields: just over that is refused.
    stamps, read = post_counting(client_for("alpha"), "/api/v1/stamps", 5_000 + 64 * 1024 + 1)
    assert (stamps.status_code, stamps.json()["code"], read.read_bytes) == (413, "document_too_large", 0)


def test_a_body_within_the_limit_is_read_as_usual(client_for, settings):
    settings.REQUEST_MAX_BYTES = 1_000
    response = client_for("alpha").post("/api/v1/customers", {"name": "x" * 50}, content_type="application/json")
    assert response.status_code != 413


def test_a_content_length_that_is_not_a_number_is_a_400(client_for):
    body = CountingInput(10)
    response = client_for("alpha").generic(
        "POST", "/api/v1/customers", b"", content_type="application/json",
        **{"wsgi.input": body, "CONTENT_LENGTH": "lots"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert body.read_bytes == 0


@pytest.fixture
def no_uploads(settings):
    """Uploads cost more than a client's whole bucket: every upload is refused by the rate limit."""
    settings.PUBLIC_RATE_LIMITS = ((1, 1), (10_000, 10_000))
    settings.PUBLIC_UPLOAD_COST = 3
    settings.RATE_LIMIT_NAMESPACE = f"public-{secrets.token_hex(4)}"
    ratelimit.reset_fallback_state()


@pytest.mark.parametrize("path", ["/verify", "/api/v1/verify"])
def test_verification_uploads_are_rate_limited_before_csrf_or_a_parser_reads_them(no_uploads, path):
    client = Client(HTTP_HOST=ISSUER, REMOTE_ADDR="198.51.100.20", enforce_csrf_checks=True)

    response, body = post_counting(client, path, 1 * MB)

    assert response.status_code == 429
    assert body.read_bytes == 0


def test_the_verify_page_still_checks_csrf_after_the_rate_limit():
    client = Client(HTTP_HOST=ISSUER, REMOTE_ADDR="198.51.100.21", enforce_csrf_checks=True)

    response = client.post("/verify", {"password": ""})

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


@pytest.mark.parametrize(("host", "path"), [("alpha", "/api/v1/stamps"), (None, "/api/v1/verify"), (None, "/verify")])
def test_a_chunked_body_without_content_length_is_a_411_and_is_not_read(client_for, host, path):
    """Django reads no body without Content-Length: the upload would look empty. Say why instead."""
    body = CountingInput(60 * MB)
    response = client_for(host).generic(
        "POST", path, b"", content_type="multipart/form-data; boundary=b",
        **{"wsgi.input": body, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
    assert body.read_bytes == 0
