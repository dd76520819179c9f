"""The webhook address check sees through IPv6 addresses that embed an IPv4 address: NAT64, 6to4,
Teredo and IPv4-mapped ones leading to a private IPv4 address are refused, at registration and at
connect time."""

from __future__ import annotations

import ipaddress

import pytest
from django_tenants.utils import schema_context

from outbox import webhooks
from outbox.models import WebhookEndpoint
from outbox.webhooks import InvalidWebhookEndpoint, create_webhook_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_only(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


def teredo(server: str, client: str) -> str:
    """A Teredo address (2001::/32): server IPv4, flags, port and client IPv4 both XOR-ed with ones."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | (0x8000 << 48) | (0xFFFF << 32)
    value |= int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address(value))


PRIVATE = [
    "64:ff9b::10.0.0.1",  # NAT64 to a private address
    "64:ff9b::127.0.0.1",
    "64:ff9b::169.254.169.254",  # NAT64 to cloud metadata
    "64:ff9b:1::808:808",  # NAT64 local-use prefix: always inside some network
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:c0a8:1::1",  # 6to4 of 192.168.0.1
    teredo("65.54.227.120", "10.0.0.1"),
    teredo("65.54.227.120", "192.168.1.5"),
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:0:a00:1",  # IPv4-translated (SIIT)
    "::a00:1",  # IPv4-compatible
]
PUBLIC = ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize("address", PRIVATE)
def test_an_ipv6_address_leading_to_a_private_ipv4_is_not_public(address):
    assert not webhooks._public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_an_ipv6_address_leading_to_a_public_ipv4_is_public(address):
    assert webhooks._public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PRIVATE)
def test_an_endpoint_on_such_an_address_is_refused(address):
    with schema_context("alpha"):
        with pytest.raises(InvalidWebhookEndpoint, match="local or private"):
            create_webhook_endpoint(url=f"https://[{address}]/hooks", events=["*"])
        assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize("address", ["64:ff9b::10.0.0.1", "2002:a00:1::1", teredo("65.54.227.120", "10.0.0.1")])
def test_a_name_resolving_to_such_an_address_is_not_connected_to(address, monkeypatch):
    import socket

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(OSError, match="resolves only to non-public addresses"):
        webhooks._connect_public(("hooks.example.com", 443), timeout=1)
