"""``/metrics`` of a real gunicorn (``gateway.gunicorn_conf``) with several worker processes: each
process counts into its instance's directory, and any of them answers with the sum of all; the
directory left by an earlier run is emptied at start."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import Process, free_port

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
