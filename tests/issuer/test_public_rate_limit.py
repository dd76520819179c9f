"""The issuer's public verification (no API key) is rate limited per client address and for everyone
together: API and pages alike, with the same 429, headers and Redis fallback as the storefront."""

from __future__ import annotations

import io
import secrets

import pytest
from django.test import Client

from gateway import ratelimit
from issuer.services import stamp_document
from tests.fixtures.pdfs import factory

pytestmark = pytest.mark.django_db

ISSUER = "issuer.test"


@pytest.fixture
def stamped(channels):
    return stamp_document(channel=channels["alpha"], data=factory.text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0))


@pytest.fixture
def limits(settings):
    """Three lookups per client address, then one a second; a shared bucket big enough not to matter."""
    settings.PUBLIC_RATE_LIMITS = ((1, 3), (10_000, 10_000))
    settings.PUBLIC_UPLOAD_COST = 3
    settings.RATE_LIMIT_NAMESPACE = f"public-{secrets.token_hex(4)}"  # fresh buckets for each test
    ratelimit.reset_fallback_state()
    return settings


def client_at(address: str, **extra) -> Client:
    return Client(HTTP_HOST=ISSUER, REMOTE_ADDR=address, **extra)


def test_a_client_over_its_limit_gets_429_with_headers_and_others_are_unaffected(limits, stamped):
    mine, theirs = client_at("198.51.100.7"), client_at("198.51.100.8")
    for _ in range(3):
        ok = mine.get(f"/api/v1/verify/{stamped.serial}")
        assert ok.status_code == 200
        assert '"client";q=3;w=3' in ok["RateLimit-Policy"] and '"public"' in ok["RateLimit-Policy"]
    refused = mine.get(f"/api/v1/verify/{stamped.serial}")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited" and "Your address" in refused.json()["detail"]
    assert int(refused["Retry-After"]) >= 1 and '"client";r=0' in refused["RateLimit"]
    assert theirs.get(f"/api/v1/verify/{stamped.serial}").status_code == 200


def test_an_upload_costs_more_than_a_lookup_and_is_refused_before_it_is_read(limits, stamped, monkeypatch):
    from faces.public import api

    reads = []
    monkeypatch.setattr(api, "verify_document", lambda data, password: reads.append(data) or {})
    client = client_at("198.51.100.9")
    assert client.get(f"/api/v1/verify/{stamped.serial}").status_code == 200  # 1 of 3
    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"
    refused = client.post("/api/v1/verify", {"document": upload})  # costs 3: over
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert reads == []


def test_the_pages_are_limited_too(limits, stamped):
    client = client_at("198.51.100.10")
    for _ in range(3):
        assert client.get(f"/v/{stamped.serial}").status_code == 200
    page = client.get(f"/v/{stamped.serial}")
    assert page.status_code == 429 and "Retry-After" in page
    assert b"sent more requests than its limit allows" in page.content
    upload = io.BytesIO(stamped.pdf)
    upload.name = "stamped.pdf"
    assert client_at("198.51.100.10").post("/verify", {"document": upload}).status_code == 429
    assert client_at("198.51.100.11").get("/verify").status_code == 200  # the form itself is free


def test_all_clients_together_share_a_bucket(limits, stamped):
    limits.PUBLIC_RATE_LIMITS = ((100, 100), (1, 2))
    assert client_at("203.0.113.1").get(f"/api/v1/verify/{stamped.serial}").status_code == 200
    assert client_at("203.0.113.2").get(f"/api/v1/verify/{stamped.serial}").status_code == 200
    refused = client_at("203.0.113.3").get(f"/api/v1/verify/{stamped.serial}")
    assert refused.status_code == 429 and '"public";r=0' in refused["RateLimit"]


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no trusted proxy: the header is the client's word, ignored
        (1, "6.6.6.6, 198.51.100.20", "198.51.100.20"),  # a client-written entry before the proxy's
        (2, "6.6.6.6, 198.51.100.21, 10.0.0.2", "198.51.100.21"),
        (2, "198.51.100.22", "198.51.100.22"),  # fewer entries than proxies: the leftmost
        (1, "", "10.0.0.1"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    from django.test import RequestFactory

    settings.NUM_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert ratelimit.client_address(request) == expected


def test_without_redis_the_fallback_limiter_still_limits(limits, stamped, monkeypatch):
    limits.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    client = client_at("198.51.100.30")
    answers = [client.get(f"/api/v1/verify/{stamped.serial}").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    ratelimit.reset_fallback_state()


def test_an_ipv6_client_is_limited_per_64_not_per_address(limits, stamped):
    """A client picking a fresh address of its /64 for each request still spends one bucket."""
    answers = [
        client_at(f"2001:db8:1:2::{n:x}").get(f"/api/v1/verify/{stamped.serial}").status_code for n in range(1, 5)
    ]
    assert answers == [200, 200, 200, 429]
    assert client_at("2001:db8:1:3::1").get(f"/api/v1/verify/{stamped.serial}").status_code == 200  # another /64


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),  # an IPv4 client seen through a dual-stack socket
        ("unknown", "unknown"),
    ],
)
def test_the_bucket_of_a_client_address(address, bucket):
    assert ratelimit.client_bucket(address) == bucket
