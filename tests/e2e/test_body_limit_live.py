"""Through the real server (gunicorn): a request announcing a body over its path's limit gets its 413
without sending a byte of the body."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest


@pytest.mark.parametrize(
    ("host", "path", "length"),
    [("issuer.test", "/api/v1/verify", 60 * 1024 * 1024), ("alpha.test", "/api/v1/batches", 120 * 1024 * 1024)],
)
def test_an_announced_oversized_body_is_refused_without_being_sent(live_db, gateway_url, host, path, length):
    address = urlsplit(gateway_url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        conn.putrequest("POST", path, skip_host=True)
        conn.putheader("Host", host)
        conn.putheader("Content-Type", "multipart/form-data; boundary=b")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()  # the head only: not one byte of the body follows
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "document_too_large" and f"{length} bytes" in problem["detail"]


def test_a_chunked_upload_is_told_to_send_its_length(live_db, gateway_url):
    address = urlsplit(gateway_url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=20)
    try:
        conn.putrequest("POST", "/api/v1/verify", skip_host=True)
        conn.putheader("Host", "issuer.test")
        conn.putheader("Content-Type", "multipart/form-data; boundary=b")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"10\r\n" + b"x" * 16 + b"\r\n")  # a first chunk; the answer does not wait for the rest
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()

    assert response.status == 411
    assert json.loads(body)["code"] == "length_required"
