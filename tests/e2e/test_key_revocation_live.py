"""A key revoked in one process is refused at once by a running server whose workers have it cached."""

from __future__ import annotations

import pytest

from gateway.apikeys import issue_api_key, revoke_api_key, rotate_api_key
from tests.e2e.http import HttpClient

pytestmark = pytest.mark.slow

# gunicorn runs 2 workers x 4 threads (tests.live.start_server); with this many requests on fresh
# connections both workers see the key, and the test does not depend on which one answers.
REQUESTS = 24


def statuses(api: HttpClient) -> set[int]:
    return {api.get("/api/v1/document-types").status for _ in range(REQUESTS)}


def test_revocation_reaches_every_server_process_on_the_next_request(live_db, gateway_url):
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    issued = issue_api_key(channel=alpha, name="live revocation", scopes=("read",))
    api = HttpClient(gateway_url, "alpha.test", issued.plaintext)
    assert statuses(api) == {200}  # now cached by the workers that answered
    revoke_api_key(api_key=issued.api_key)
    assert statuses(api) == {401}


def test_an_expired_rotation_overlap_is_refused_by_the_server(live_db, gateway_url):
    from datetime import timedelta

    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    old = issue_api_key(channel=alpha, name="live rotation", scopes=("read",))
    api = HttpClient(gateway_url, "alpha.test", old.plaintext)
    assert statuses(api) == {200}
    new = rotate_api_key(api_key=old.api_key, overlap=timedelta(0))  # no overlap: the old key ends now
    assert statuses(api) == {401}
    assert statuses(HttpClient(gateway_url, "alpha.test", new.plaintext)) == {200}
