"""``make demo`` on a busy port: it says so before starting anything, and how to pick another."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port():
    """A port something listens on, as a server already running would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def demo(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "gateway.demo"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_busy_port_stops_the_demo_before_it_starts_anything(busy_port):
    result = demo(DEMO_PORT=str(busy_port))

    assert result.returncode == 2
    assert f"port {busy_port} on 127.0.0.1 (for the web server) is already in use" in result.stderr
    assert "DEMO_PORT=" in result.stderr and "make demo" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Starting embedded" not in result.stdout and "is running" not in result.stdout


def test_a_busy_probe_port_is_named_too(busy_port):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    web_port = free.getsockname()[1]
    free.close()

    result = demo(DEMO_PORT=str(web_port), DEMO_PROBE_PORT=str(busy_port))

    assert result.returncode == 2
    assert f"port {busy_port} on 127.0.0.1 (for the probe listener) is already in use" in result.stderr
    assert "Starting embedded" not in result.stdout


def test_a_port_that_is_not_a_number_is_explained():
    result = demo(DEMO_PORT="eighty")

    assert result.returncode == 1
    assert "DEMO_PORT='eighty' is not a port number" in result.stderr
    assert "Traceback" not in result.stderr and "Starting embedded" not in result.stdout


def test_the_demo_runs_a_local_tsa_unless_one_is_configured(monkeypatch, busy_port):
    from gateway import demo as demo_module

    for name in ("ISSUER_TSA_URL", "ISSUER_SIGNING_PKCS12", "ISSUER_SIGNING_KEY", "DEMO_TSA_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert demo_module._local_tsa_port() == demo_module.PORT + 82 or demo_module.port_in_use(demo_module.PORT + 82)
    monkeypatch.setenv("DEMO_TSA_PORT", str(busy_port))
    moved = demo_module._local_tsa_port()
    assert moved is not None and moved != busy_port  # a busy port: the next free one
    monkeypatch.setenv("ISSUER_TSA_URL", "https://tsa.example/")
    assert demo_module._local_tsa_port() is None  # the configured TSA is used
