"""Under ASGI the body limits apply before Django's handler, which would read a whole body first:
an announced oversized body is refused unread, a chunked one is cut off at the limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.asgi import application

CHUNK = 64 * 1024


class Client:
    """An ASGI client that sends ``chunks`` body chunks of 64 KiB on demand and counts them."""

    def __init__(self, chunks: int):
        self.chunks, self.sent, self.messages = chunks, 0, []  # sent: chunks handed out

    async def receive(self):
        if self.sent == self.chunks:
            self.sent += 1  # (not a chunk: the end of the body)
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.sent > self.chunks:
            await asyncio.sleep(3600)  # a client waiting for its answer (Django listens for a disconnect)
        self.sent += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    async def send(self, message):
        self.messages.append(message)

    def answer(self) -> tuple[int, dict, dict]:  # a problem+json answer
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), json.loads(body)


def run(path: str, headers: list, client: Client) -> None:
    """One request through the real ASGI application (Django behind the limit)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"alpha.test"), *headers], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }
    asyncio.run(application(scope, client.receive, client.send))


@pytest.fixture
def limits(settings):
    settings.REQUEST_MAX_BYTES = 4 * CHUNK
    settings.STAMP_BATCH_MAX_BYTES = 8 * CHUNK


def test_an_announced_oversized_body_is_refused_unread(limits):
    client = Client(chunks=100)

    run("/api/v1/batches", [(b"content-length", str(9 * CHUNK).encode())], client)

    status, headers, problem = client.answer()
    assert (status, problem["code"]) == (413, "document_too_large")
    assert headers[b"content-type"] == b"application/problem+json"
    assert client.sent == 0


def test_a_chunked_body_is_cut_off_at_the_limit(limits):
    client = Client(chunks=1000)  # 64 MB on offer

    run("/api/v1/customers", [(b"transfer-encoding", b"chunked")], client)

    status, _, problem = client.answer()
    assert (status, problem["code"]) == (413, "request_too_large")
    assert client.sent == 5  # one chunk past the 4-chunk limit, then no more


def test_a_body_within_the_limit_reaches_django_whole(limits):
    client = Client(chunks=3)

    run("/healthz", [], client)  # answered without the database, on any host

    status = next(m for m in client.messages if m["type"] == "http.response.start")["status"]
    assert status != 413
    assert client.sent == 4  # Django read it all, to its end
