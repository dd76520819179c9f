"""The edge: request ids, the problem+json envelope, probes, logs."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response["X-Request-Id"]
    return body


def test_every_response_carries_a_request_id_and_a_good_one_is_echoed(client_for):
    client = client_for("alpha")
    generated = client.get("/api/v1/")
    assert generated["X-Request-Id"].startswith("req_")
    echoed = client.get("/api/v1/", HTTP_X_REQUEST_ID="trace-1234abcd")
    assert echoed["X-Request-Id"] == "trace-1234abcd"
    hostile = client.get("/api/v1/", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert hostile["X-Request-Id"].startswith("req_")


def test_unknown_host_is_a_clear_404_problem():
    response = Client(HTTP_HOST="nobody.test").get("/api/v1/")
    body = assert_problem(response, 404, "unknown_host")
    assert "nobody.test" in body["detail"]


def test_unknown_host_in_a_browser_gets_a_page():
    response = Client(HTTP_HOST="nobody.test").get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert b"Unknown host" in response.content
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("host_channel", ["alpha", None])
def test_unknown_path_is_a_404_problem_on_channel_and_issuer_hosts(client_for, host_channel):
    assert_problem(client_for(host_channel).get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_a_405_problem(client_for):
    assert_problem(client_for("alpha").delete("/api/v1/"), 405, "method_not_allowed")


@override_settings(ROOT_URLCONF="tests.gateway.urls_boom")
def test_a_500_never_leaks_exception_text(client_for, caplog):
    client = client_for("alpha")
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR):
        response = client.get("/boom/")
    body = assert_problem(response, 500, "internal_error")
    assert "database password" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    # ... while the log keeps the trace for the operator, tied to the same request id.
    assert any("database password" in (r.exc_text or str(r.exc_info)) for r in caplog.records)
    assert body["request_id"]


@override_settings(ROOT_URLCONF="tests.gateway.urls_boom")
def test_a_500_inside_a_drf_view_is_also_a_problem(client_for):
    client = client_for("alpha")
    client.raise_request_exception = False
    response = client.get("/api-boom/")
    assert_problem(response, 500, "internal_error")
    assert "secret detail" not in response.content.decode()


def test_healthz_answers_on_any_host_without_tenants():
    for host in ("alpha.test", "nobody.test", "issuer.test"):
        response = Client(HTTP_HOST=host).get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_readyz_reports_postgres_and_redis():
    response = Client(HTTP_HOST="nobody.test").get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgres"]["ok"] and body["checks"]["redis"]["ok"]


def test_readyz_fails_clearly_when_redis_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["postgres"]["ok"] is True
    assert "redis" in body["detail"]
    assert response["Retry-After"]


@pytest.fixture
def database_down():
    """Point the live connection at a port where no PostgreSQL listens, then restore it."""
    from django.db import connections
    from django.db.utils import ConnectionHandler

    unreachable = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1", "NAME": "nowhere"}
    handler = ConnectionHandler({"default": unreachable})
    broken = handler["default"]
    original = connections["default"]
    connections["default"] = broken
    try:
        yield
    finally:
        connections["default"] = original
        broken.close()


def test_readyz_fails_clearly_when_the_database_is_down(database_down):
    response = Client().get("/readyz")
    body = assert_problem(response, 503, "not_ready")
    assert body["checks"]["postgres"] == {"ok": False, "error": "OperationalError"}
    assert "postgres" in body["detail"]


def test_log_lines_are_json_with_request_id_and_channel(client_for):
    from gateway.logging import ContextFilter, JsonFormatter

    captured: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            captured.append(JsonFormatter().format(record))

    handler = Capture()
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.edge")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        from tests.gateway import urls_boom

        urls_boom.LOG_TO = logger
        with override_settings(ROOT_URLCONF="tests.gateway.urls_boom"):
            response = client_for("alpha").get("/log/", HTTP_X_REQUEST_ID="trace-log-0001")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200
    line = json.loads(captured[-1])
    assert line["msg"] == "hello from a view"
    assert line["request_id"] == "trace-log-0001"
    assert line["channel"] == "alpha"
    assert line["level"] == "INFO"
