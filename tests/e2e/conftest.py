from __future__ import annotations

import pytest

from tests.live import start_server


@pytest.fixture(scope="session")
def gateway_url(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real gunicorn serving the test database (committed data only)."""
    with django_db_blocker.unblock():
        server, url = start_server(tmp_path_factory.mktemp("server"))
    yield url
    server.stop()
