"""The web tier's bulkheads: a channel holding its share of a process's threads is refused at once,
while another channel (and the issuer) are served."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from gateway import bulkhead

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_threads(settings):
    settings.WEB_THREADS = 4
    settings.WEB_CHANNEL_SHARE = 0.5
    bulkhead._in_flight.clear()
    bulkhead._last_seen.clear()
    yield
    bulkhead._in_flight.clear()
    bulkhead._last_seen.clear()


@pytest.fixture
def beta_being_served(four_threads):
    """Another channel is being served by this process: alpha is held to its share."""
    bulkhead._last_seen["beta"] = time.monotonic() + 3600


def test_the_cap_is_the_share_of_the_threads_and_never_all_of_them(settings):
    settings.WEB_CHANNEL_SHARE = 0.5
    settings.WEB_THREADS = 4
    assert bulkhead.channel_cap() == 2
    settings.WEB_CHANNEL_SHARE = 1.0
    assert bulkhead.channel_cap() == 3  # one thread is always left for the others
    settings.WEB_THREADS = 1
    assert bulkhead.channel_cap() > 1000  # a sync worker has nothing to share


def test_a_channel_at_its_share_is_refused_while_another_is_served(beta_being_served, client_for):
    bulkhead._in_flight["alpha"] = 2  # two alpha requests in progress on this process
    refused = client_for("alpha").get("/api/v1/balance?customer=1")
    assert refused.status_code == 503
    body = refused.json()
    assert body["code"] == "channel_busy" and body["request_id"]
    assert refused["Content-Type"].startswith("application/problem+json")
    assert int(refused["Retry-After"]) in (1, 2)
    assert bulkhead.in_flight("alpha") == 2  # the refusal took no slot

    served = client_for("beta").get("/api/v1/document-types")
    assert served.status_code == 200
    assert client_for(None).get("/api/v1/verify/XXXXXXXXXXXXXXXXXXXXXX").status_code != 503  # the issuer's host
    assert bulkhead.in_flight("beta") == 0  # given back when the answer left


def test_a_slot_is_given_back_when_the_view_fails(four_threads, client_for, monkeypatch):
    from faces.storefront import stamps

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(stamps.DocumentTypesApi, "get", boom)
    client = client_for("alpha")
    client.raise_request_exception = False
    assert client.get("/api/v1/document-types").status_code == 500
    assert bulkhead.in_flight("alpha") == 0


def test_concurrent_requests_never_exceed_the_cap(beta_being_served, client_for, monkeypatch):
    """Requests held inside the view: of five at once on one channel, two run and three are refused."""
    from faces.storefront import stamps

    release = threading.Event()
    inside = threading.Semaphore(0)
    original = stamps.DocumentTypesApi.get

    def held(self, request, *args, **kwargs):
        inside.release()
        release.wait(10)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(stamps.DocumentTypesApi, "get", held)
    answers: list[int] = []

    def call():
        try:
            answers.append(client_for("alpha").get("/api/v1/document-types").status_code)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    assert inside.acquire(timeout=10) and inside.acquire(timeout=10)
    # Wait for the three refusals (they do not enter the view), then let the two finish.
    for _ in range(1000):
        if len(answers) == 3:
            break
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == [200, 200, 503, 503, 503]
    assert bulkhead.in_flight("alpha") == 0


def test_a_refusal_before_the_body_still_reads_it_off_the_connection(rf):
    """The client is still sending when an early refusal is answered: the body is read and dropped,
    so the answer is not lost in a reset connection; an oversized one closes the connection."""
    from django.http import HttpResponse

    from gateway.middleware import UNREAD_BODY_DISCARD_LIMIT, discard_unread_body

    request = rf.generic("POST", "/api/v1/stamps", b"x" * 300_000, content_type="application/pdf")
    response = HttpResponse(status=503)
    discard_unread_body(request, response)
    assert request._stream.read() == b""
    assert "Connection" not in response

    read = rf.generic("POST", "/api/v1/stamps", b"y" * 10, content_type="text/plain")
    assert read.body == b"y" * 10  # a view that read its body: nothing to do
    discard_unread_body(read, response)

    huge = rf.post("/api/v1/stamps", data=b"z", content_type="application/pdf")
    huge.META["CONTENT_LENGTH"] = str(UNREAD_BODY_DISCARD_LIMIT + 1)
    discard_unread_body(huge, response)
    assert response["Connection"] == "close"


def test_load_shed_on_purpose_is_not_logged_as_a_server_error(beta_being_served, client_for, caplog):
    """A surge answers thousands of these a second; each a django.request ERROR line would cost the CPU
    the refusal saves."""
    bulkhead._in_flight["alpha"] = 2
    with caplog.at_level("WARNING", logger="django.request"):
        assert client_for("alpha").get("/api/v1/document-types").status_code == 503
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_a_channel_alone_in_the_process_borrows_all_threads_but_one(four_threads, client_for):
    """Nobody else is being served: the bulkhead refuses nothing an idle server could do."""
    bulkhead._in_flight["alpha"] = 2  # at its share of 2
    assert client_for("alpha").get("/api/v1/document-types").status_code == 200
    bulkhead._in_flight["alpha"] = 3  # all threads but one
    assert client_for("alpha").get("/api/v1/document-types").json()["code"] == "channel_busy"


def test_pages_and_static_files_are_not_counted(beta_being_served, client_for):
    """A browser loads a page, its stylesheet and its icon at once: they never meet the bulkhead."""
    bulkhead._in_flight["alpha"] = 3
    assert client_for("alpha").get("/login/").status_code == 200
