"""``make demo``: embedded services, migrations, demo data, web server, Celery worker and beat.

One Ctrl-C stops everything this command started (including the embedded PostgreSQL and Redis
if it was the one that started them).

``DEMO_PORT`` (default 8000) is the web server's port on 127.0.0.1, ``DEMO_PROBE_PORT`` (default
``DEMO_PORT + 81``) the probes'. Both are checked before anything starts: a port in use stops the
demo at once with a message naming a free one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from gateway import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _port_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name}={raw!r} is not a port number. Use a number from 1024 to 65535, e.g. {name}=8010.")
    return int(raw)


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something already listens on ``host:port`` (a socket in TIME_WAIT does not count,
    as gunicorn binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port_after(port: int, *, avoid: tuple[int, ...] = ()) -> int | None:
    """The first free port above ``port`` (within 100) whose probe port (+81) is free as well."""
    for candidate in range(port + 1, min(port + 101, 65535 - 81)):
        if candidate in avoid or candidate + 81 in avoid:
            continue
        if not port_in_use(candidate) and not port_in_use(candidate + 81):
            return candidate
    return None


def check_ports(port: int, probe_port: int) -> str | None:
    """None when both ports are free; otherwise what to tell the user (nothing has started yet)."""
    busy = [(what, p) for what, p in (("web server", port), ("probe listener", probe_port)) if port_in_use(p)]
    if not busy:
        return None
    what, taken = busy[0]
    lines = [f"Cannot start the demo: port {taken} on {HOST} (for the {what}) is already in use."]
    lines.append("Another demo may be running (stop it with Ctrl-C), or another server uses the port.")
    suggestion = free_port_after(port, avoid=(port, probe_port))
    example = suggestion or 8010
    lines.append(
        f"Pick another port with DEMO_PORT, e.g.: DEMO_PORT={example} make demo"
        f" (the probes then listen on DEMO_PORT + 81 = {example + 81}; DEMO_PROBE_PORT sets them apart)."
    )
    return "\n".join(lines)


PORT = _port_setting("DEMO_PORT", DEFAULT_PORT)
# The probe listener (gateway.gunicorn_conf): /healthz and /readyz that no request can queue in front of.
PROBE_PORT = _port_setting("DEMO_PROBE_PORT", PORT + 81)


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
    refusal = check_ports(PORT, PROBE_PORT)
    if refusal:
        print(refusal, file=sys.stderr, flush=True)
        return 2
    pg_before, redis_before = _was_running()
    print("Starting embedded PostgreSQL and Redis under .data/ ...", flush=True)
    embedded.ensure_postgres()
    embedded.ensure_redis()
    print("Migrating all schemas ...", flush=True)
    _manage("migrate_schemas", "--shared", "-v", "0")
    _manage("migrate_schemas", "-v", "0")
    _manage("dev_keys", "-v", "0")  # the development signing key, made here and never by a request
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
            f"{HOST}:{PORT}",
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
            "stamping,credit,default",  # every queue, highest priority first (CELERY_WORKER_QUEUES)
            "-n",
            "demo@%h",
        ],
        [str(BIN / "celery"), "-A", "gateway", "beat", "--loglevel", "INFO", "-s", str(schedule)],
    ]
    env = dict(os.environ, GATEWAY_PROBE_BIND=f"{HOST}:{PROBE_PORT}")
    tsa_port = _local_tsa_port()
    if tsa_port is not None:
        # demo stamps are time-stamped (PAdES B-T) by a local TSA under the development root
        commands.insert(0, [sys.executable, "manage.py", "local_tsa", "--port", str(tsa_port)])
        env["ISSUER_TSA_URL"] = f"http://{HOST}:{tsa_port}/tsa"
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


def _local_tsa_port() -> int | None:
    """The local TSA's port (``DEMO_TSA_PORT``, default the web port + 82), or None when the
    environment names a TSA already (``ISSUER_TSA_URL``) or a real signing key."""
    if os.environ.get("ISSUER_TSA_URL") or os.environ.get("ISSUER_SIGNING_PKCS12") or os.environ.get(
        "ISSUER_SIGNING_KEY"
    ):
        return None
    port = _port_setting("DEMO_TSA_PORT", PORT + 82)
    if port_in_use(port):
        free = free_port_after(port, avoid=(PORT, PROBE_PORT))
        if free is None:
            return None
        port = free
    return port


def _print_banner(credentials: dict) -> None:
    issuer = credentials["issuer"]
    lines = [
        "",
        "e-Meterai gateway demo is running.",
        f"  Issuer (back office, verification, status): http://localhost:{PORT}/",
        f"    staff login: {issuer['staff_user']} / {issuer['staff_password']} (records deposits)",
        f"    checker login: {issuer['checker_user']} / {issuer['checker_password']} (confirms them)",
        "    first sign-in of each: scan the QR code with an authenticator app (TOTP), then enter its code",
        f"  Probes (never queued behind requests): http://127.0.0.1:{PROBE_PORT}/healthz and /readyz",
        f"  Issuer root certificate (trust it to validate demo stamps): http://localhost:{PORT}/ca/root.pem",
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
