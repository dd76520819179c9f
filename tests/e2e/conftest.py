from __future__ import annotations

import pytest

from tests.live import start_server, start_worker


@pytest.fixture(scope="session")
def gateway_url(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real gunicorn serving the test database (committed data only)."""
    with django_db_blocker.unblock():
        server, url = start_server(tmp_path_factory.mktemp("server"))
    yield url
    server.stop()


@pytest.fixture(scope="session")
def stamping_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker on the default and stamping queues."""
    with django_db_blocker.unblock():
        worker = start_worker(tmp_path_factory.mktemp("worker"), name="e2e", queues="stamping,credit,default")
    yield worker
    worker.stop()
