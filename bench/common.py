"""What every benchmark does first: Django set up on a database of its own whose schemas are migrated.

Benchmarks never write to the project's database (the demo's): they make channels, customers,
orders, holds without serials and serials without committed units, which ``manage.py reconcile``
would then report for good. ``use_bench_database`` points this process and every process it
starts at ``<database>_bench_<benchmark>`` on the same server (``gateway_bench_surge`` in the embedded
one for ``bench/surge.py``), created and migrated on first use: one database per benchmark, so what one
leaves (``bench/api.py`` mints serials without units) never fails another's reconciliation check.
``make clean`` removes them with the rest of ``.data/``; ``BENCH_DATABASE_URL`` names another.
"""

from __future__ import annotations

import os

BENCH_SUFFIX = "_bench"


def bench_database_url(
    project_url: str | None, *, embedded_host: str = "", embedded_user: str = "postgres", bench: str = ""
) -> str:
    """The benchmark ``bench``'s database: ``project_url``'s server with ``_bench_<bench>`` added to the
    database name, or, without a ``project_url``, ``gateway_bench_<bench>`` in the embedded server."""
    suffix = f"{BENCH_SUFFIX}_{bench}" if bench else BENCH_SUFFIX
    from urllib.parse import quote, urlsplit, urlunsplit

    if not project_url:
        from gateway.embedded import EMBEDDED_DATABASE, POSTGRES_PORT

        host = quote(embedded_host, safe="")  # a unix-socket directory, percent-encoded as the host
        return f"postgres://{embedded_user}@{host}:{POSTGRES_PORT}/{EMBEDDED_DATABASE}{suffix}"
    parts = urlsplit(project_url)
    name = parts.path.lstrip("/")
    if BENCH_SUFFIX in name:
        return project_url
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def use_bench_database(bench: str = "") -> str:
    """Point this process (and its children, through the environment) at the benchmarks' own
    database, creating it if needed; start the embedded servers the environment does not name.
    Call it before Django's settings are read. Returns the database URL."""
    if os.environ.get("GATEWAY_BENCH_DATABASE_READY"):
        return os.environ["DATABASE_URL"]
    import psycopg
    from psycopg import sql

    from gateway import embedded

    if os.environ.get("BENCH_DATABASE_URL"):
        url = os.environ["BENCH_DATABASE_URL"]
    elif os.environ.get("DATABASE_URL"):
        url = bench_database_url(os.environ["DATABASE_URL"], bench=bench)
    else:
        location = embedded.ensure_postgres()
        url = bench_database_url(None, embedded_host=location.host, embedded_user=location.user, bench=bench)
    if not os.environ.get("REDIS_URL"):
        embedded.ensure_redis()
    target = psycopg.conninfo.conninfo_to_dict(url.replace("postgres://", "postgresql://", 1))
    name = target.pop("dbname")
    with psycopg.connect(**target, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    os.environ["DATABASE_URL"] = url
    os.environ["GATEWAY_BENCH_DATABASE_READY"] = "1"
    print(f"Benchmark database: {name} (the project's own database is not touched)", flush=True)
    return url


def setup_migrated(bench: str = "") -> None:
    """The benchmarks' own database (``use_bench_database``), ``django.setup()`` and ``migrate_schemas``
    (a no-op when up to date), so a benchmark runs on a fresh clone and never on the demo's data."""
    use_bench_database(bench)
    import django

    from gateway.embedded import start_if_unconfigured

    start_if_unconfigured()
    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--shared", verbosity=0)
    call_command("migrate_schemas", verbosity=0)
    from django.conf import settings

    from issuer.signing.keys import create_dev_keys

    if settings.ISSUER_DEV_KEYS:  # the signing key the benchmarks' workers load, made here as the demo does
        create_dev_keys(settings.ISSUER_KEY_DIR)


def multipart_body(fields: dict, document: bytes, *, filename: str = "document.pdf") -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``fields`` and one PDF under ``document``; returns (body, content type).

    Built once per document by a load generator, so a request costs it only the send."""
    import secrets

    boundary = "bench" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="{filename}"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
    )
    parts += [document, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
