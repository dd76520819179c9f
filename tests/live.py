"""Real processes for end-to-end tests: a gunicorn server and Celery workers on the test database."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment for a child process that must use this test run's database and Redis."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="gateway.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{host}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        PAYMENT_SIMULATOR_SECRET=settings.PAYMENT_SIMULATOR_SECRET,
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    return env


class Process:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None):
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(  # noqa: S603
            argv,
            cwd=ROOT,
            env=child_env() | (env or {}),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def private_broker(database: int = 7) -> dict[str, str]:
    """Environment for servers and workers that share a broker database of their own, out of reach
    of the suite's other workers (the e2e session worker would otherwise take their tasks)."""
    from django.conf import settings

    url, swapped = re.subn(r"((?:virtual_host=|db=)|/)1$", rf"\g<1>{database}", settings.CELERY_BROKER_URL)
    assert swapped == 1, settings.CELERY_BROKER_URL
    return {"CELERY_BROKER_URL": url}


def start_server(tmp: Path, *, workers: int = 2, env: dict[str, str] | None = None) -> tuple[Process, str]:
    port = free_port()
    proc = Process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "gateway.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--timeout",
            "60",
        ],
        tmp / f"gunicorn-{port}.log",
        env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + proc.output())
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310
                return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    proc.stop()
    raise RuntimeError("gunicorn did not start:\n" + proc.output())


def start_worker(
    tmp: Path, *, name: str, queues: str = "default", concurrency: int = 2, env: dict[str, str] | None = None
) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "gateway", "worker", "-n", f"{name}@%h", "-Q", queues]
    argv += ["--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    return Process(argv, tmp / f"worker-{name}.log", env)
