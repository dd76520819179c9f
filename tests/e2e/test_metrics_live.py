"""``/metrics`` of a real gunicorn (``gateway.gunicorn_conf``) with several worker processes: each
process counts into its instance's directory, and any of them answers with the sum of all; the
directory left by an earlier run is emptied at start. A Celery worker sharing the directory (as on one
host) has its stamps counted in the same answer."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.billing.factories import funded_wallet, unique
from tests.e2e.http import HttpClient
from tests.fixtures.pdfs.factory import text_pdf
from tests.live import Process, free_port, private_broker, start_worker

pytestmark = pytest.mark.slow

TOKEN = "live-metrics-token"  # noqa: S105 - a test value


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def requests_counted(text: str, route: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "gateway_http_requests_total" and s.labels.get("route") == route
    )


def test_every_worker_process_is_counted_and_a_restart_starts_from_empty(live_db, tmp_path):
    metrics_dir = tmp_path / "metrics"
    stale = metrics_dir / "web-oldhost-1"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"")  # another host's directory: left alone (its files are read)
    port = free_port()
    env = {"GATEWAY_METRICS_DIR": str(metrics_dir), "METRICS_TOKEN": TOKEN, "GATEWAY_PROBE_BIND": "off"}
    argv = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--config", "python:gateway.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "--workers", "3", "--threads", "2", "--timeout", "60"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def start() -> Process:
        server = Process(argv, tmp_path / f"gunicorn-{time.monotonic_ns()}.log", env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.proc.poll() is None, server.output()
            try:
                if get(f"{url}/healthz")[0] == 200:
                    return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        server.stop()
        raise AssertionError("gunicorn did not start:\n" + server.output())

    server = start()
    try:
        assert get(f"{url}/metrics")[0] == 403
        for _ in range(30):  # spread over the workers by the kernel's accept
            assert get(f"{url}/healthz")[0] == 200
        status, text = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, text
        # every /healthz so far, whichever process answered it (the first plus the 30)
        assert requests_counted(text, "healthz") >= 31
        instance_dirs = [p for p in metrics_dir.iterdir() if p.name.startswith("web-") and p != stale]
        assert len(instance_dirs) == 1
        assert len(list(instance_dirs[0].glob("*.db"))) >= 2  # more than one process wrote
    finally:
        server.stop()
    server = start()
    try:
        status, text = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert requests_counted(text, "healthz") < 31  # the dead instance's counts are gone
        assert not any(p.exists() for p in instance_dirs)
        assert stale.exists()
    finally:
        server.stop()


def samples_of(text: str, name: str) -> dict[frozenset, float]:
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_a_celery_workers_stamps_are_counted_in_the_web_instances_answer(live_db, tmp_path, channel_keys):
    from django_tenants.utils import schema_context

    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Counted")
    metrics_dir = tmp_path / "metrics"
    env = {"GATEWAY_METRICS_DIR": str(metrics_dir), "METRICS_TOKEN": TOKEN, "GATEWAY_PROBE_BIND": "off",
           **private_broker(database=6)}  # fmt: skip
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "gateway.wsgi:application", "--config", "python:gateway.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2", "--timeout", "60",
            "--no-control-socket"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = Process(argv, tmp_path / "gunicorn.log", env)
    worker = start_worker(tmp_path, name="metered", queues="default,stamping", concurrency=2, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if get(f"{url}/healthz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline and server.proc.poll() is None, server.output()
            time.sleep(0.2)
        api = HttpClient(url, "alpha.test", channel_keys["alpha"])
        accepted = api.post("/api/v1/stamps", form={"customer": customer_id, "page": "1", "llx": "40", "lly": "40",
                            "urx": "140", "ury": "140"}, files=[("document", "a.pdf", text_pdf())])  # fmt: skip
        assert accepted.status == 202, accepted.text
        job = accepted.json()["id"]
        while api.get(f"/api/v1/stamps/{job}").json()["status"] not in ("stamped", "failed"):
            assert time.monotonic() < deadline, worker.output()[-3000:]
            time.sleep(0.2)
        # The job reads stamped from its commit on; the worker counts it just after (a loaded machine
        # can put the read in between), so the answer is read again until it holds the count.
        alpha_stamped = frozenset({"channel": "alpha", "outcome": "stamped"}.items())
        while True:
            status, text = get(f"{url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            stamped = samples_of(text, "gateway_stamps_total")
            if stamped.get(alpha_stamped, 0) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert stamped.get(alpha_stamped, 0) >= 1, text[:2000]
        waits = samples_of(text, "gateway_stamp_wait_seconds_count")
        assert waits.get(frozenset({"channel": "alpha"}.items()), 0) >= 1
        assert any(p.name.startswith("worker-") for p in metrics_dir.iterdir())
    finally:
        worker.stop()
        server.stop()


def test_a_worker_only_host_answers_its_own_metrics(live_db, tmp_path, monkeypatch):
    """A worker instance with a metrics directory of its own (a machine without a web instance) answers
    ``/metrics`` on WORKER_METRICS_BIND: its stamps to the token, a problem to anyone else."""
    from django_tenants.utils import schema_context

    from stamping import services
    from tenants.customers.models import Customer
    from tenants.models import Channel

    alpha = Channel.objects.get(code="alpha")
    customer_id = funded_wallet(channel_id=alpha.pk, units=1)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Far Away")
    port = free_port()
    env = {"GATEWAY_METRICS_DIR": str(tmp_path / "worker-host-metrics"), "METRICS_TOKEN": TOKEN,
           "WORKER_METRICS_BIND": f"127.0.0.1:{port}", **private_broker(database=5)}  # fmt: skip
    worker = start_worker(tmp_path, name="far", queues="default,stamping", concurrency=1, env=env)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = get(url)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline and worker.proc.poll() is None, worker.output()[-3000:]
                time.sleep(0.2)
        assert status == 403 and '"code": "metrics_forbidden"' in body
        assert get(url, {"Authorization": "Bearer not-the-token"})[0] == 403

        from celery import current_app

        monkeypatch.setattr(services, "queued", lambda **_: None)  # woken on this test's own broker below
        with schema_context("alpha"):
            job = services.request_stamp(
                channel=alpha, customer_id=customer_id,
                request=services.StampRequest(data=text_pdf(), page=1, box=(40.0, 40.0, 140.0, 140.0)),
            )  # fmt: skip
        with current_app.connection_for_write(private_broker(database=5)["CELERY_BROKER_URL"]) as conn:
            current_app.send_task("gateway.stamping.drain_lane", args=["alpha"], queue="stamping", connection=conn)
        while True:
            status, text = get(url, {"Authorization": f"Bearer {TOKEN}"})
            counted = samples_of(text, "gateway_stamps_total").get(
                frozenset({"channel": "alpha", "outcome": "stamped"}.items()), 0
            )
            if status == 200 and counted >= 1:
                break
            assert time.monotonic() < deadline, (job.pk, text[:2000], worker.output()[-3000:])
            time.sleep(0.3)
    finally:
        worker.stop()
