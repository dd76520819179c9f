"""The API reference pages render their Markdown, link only to what is served, and every host
serves a favicon."""

from __future__ import annotations

import re

import pytest

from conftest import ISSUER_HOST

pytestmark = pytest.mark.django_db

HOSTS = ["alpha.test", ISSUER_HOST]


@pytest.mark.parametrize("host", HOSTS)
def test_the_api_reference_renders_markdown_and_links_only_to_served_pages(client_for, host):
    client = client_for(None if host == ISSUER_HOST else "alpha", key=None)

    response = client.get("/api/v1/docs", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    html = response.content.decode()
    body = html[html.index("<main") :]
    assert "`" not in body  # no raw Markdown
    assert "**" not in body
    assert "docs/api.md" not in html and "docs/errors" not in html  # files of the repository, not served here
    assert "<code>application/problem+json</code>" in body
    assert '<a href="/api/v1/docs#errors">/api/v1/docs#errors</a>' in body
    assert 'id="errors"' in body
    for href in set(re.findall(r'href="([^"]+)"', body)):
        if href.startswith("#"):
            assert f'id="{href[1:]}"' in body, href
        elif href.startswith("/"):
            assert client.get(href.split("#")[0]).status_code == 200, href


def test_markdown_in_descriptions_is_escaped_first():
    from gateway.http.schema import markdown_inline

    rendered = markdown_inline("Use `<b>` and **this**, [the list](#errors) or [no](javascript:x) <script>")

    assert rendered == (
        'Use <code>&lt;b&gt;</code> and <strong>this</strong>, <a href="#errors">the list</a> or no &lt;script&gt;'
    )


@pytest.mark.parametrize("host", [*HOSTS, "beta.test"])
def test_every_host_serves_a_favicon_and_pages_point_to_it(client_for, host):
    client = client_for(None if host == ISSUER_HOST else host.split(".")[0], key=None)

    icon = client.get("/favicon.ico")

    assert icon.status_code == 200
    assert icon["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = client.get("/api/v1/docs", HTTP_ACCEPT="text/html")
    assert '<link rel="icon" href="/favicon.ico"' in page.content.decode()
