"""``make demo``: embedded services, migrations, demo data, web server, Celery worker and beat.

One Ctrl-C stops everything this command started (including the embedded PostgreSQL and Redis
if it was the one that started them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_PORT", "8000"))
# The probe listener (gateway.gunicorn_conf): /healthz and /readyz that no request can queue in front of.
PROBE_PORT = int(os.environ.get("DEMO_PROBE_PORT", str(PORT + 81)))


def _was_running() -> tuple[bool, bool]:
    _, sock, _ = embedded._redis_paths()
    return (embedded._pg_dir() / "postmaster.pid").exists(), embedded._redis_alive(sock)


def _manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
    pg_before, redis_before = _was_running()
    print("Starting embedded PostgreSQL and Redis under .data/ ...", flush=True)
    embedded.ensure_postgres()
    embedded.ensure_redis()
    print("Migrating all schemas ...", flush=True)
    _manage("migrate_schemas", "--shared", "-v", "0")
    _manage("migrate_schemas", "-v", "0")
    credentials = json.loads(_manage("seed_demo", capture=True).strip().splitlines()[-1])

    procs: list[subprocess.Popen] = []
    schedule = embedded.DATA_DIR / "celerybeat-schedule"
    commands = [
        [
            str(BIN / "gunicorn"),
            "gateway.wsgi:application",
            "--config",
            "python:gateway.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "3",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
        ],
        [
            str(BIN / "celery"),
            "-A",
            "gateway",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "-Q",
            "default,stamping",
            "-n",
            "demo@%h",
        ],
        [str(BIN / "celery"), "-A", "gateway", "beat", "--loglevel", "INFO", "-s", str(schedule)],
    ]
    env = dict(os.environ, GATEWAY_PROBE_BIND=f"127.0.0.1:{PROBE_PORT}")
    for command in commands:
        procs.append(subprocess.Popen(command, cwd=ROOT, env=env))  # noqa: S603
    _print_banner(credentials)

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("A demo process exited; stopping the rest.", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if not redis_before:
            embedded.stop_redis()
        if not pg_before:
            embedded.stop_postgres()
        print("Stopped.", flush=True)
    return 0


def _print_banner(credentials: dict) -> None:
    issuer = credentials["issuer"]
    lines = [
        "",
        "e-Meterai gateway demo is running.",
        f"  Issuer (back office, verification, status): http://localhost:{PORT}/",
        f"    staff login: {issuer['staff_user']} / {issuer['staff_password']}",
        f"  Probes (never queued behind requests): http://127.0.0.1:{PROBE_PORT}/healthz and /readyz",
    ]
    for code, info in credentials["channels"].items():
        lines += [
            f"  Channel {code}: http://{code}.localhost:{PORT}/  (portal) and /api/v1/ (storefront API)",
            f"    portal login: {info['portal_user']} / {info['portal_password']}",
            f"    API key: {info['api_key']}",
            f"    try: curl -H 'Host: {code}.localhost' -H 'Authorization: Bearer {info['api_key']}' "
            f"http://127.0.0.1:{PORT}/api/v1/customers",
        ]
    lines += ["  Press Ctrl-C to stop everything.", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
