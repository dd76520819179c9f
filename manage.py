#!/usr/bin/env python
import os
import sys

MIGRATE = "  .venv/bin/python manage.py migrate_schemas --shared\n  .venv/bin/python manage.py migrate_schemas\n"


def _missing_relation(exc: BaseException) -> str | None:
    """The message of an ``undefined table`` error (SQLSTATE 42P01) in ``exc`` or its causes, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "sqlstate", None) == "42P01":
            return str(exc).strip().splitlines()[0]
        exc = exc.__cause__ or exc.__context__
    return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
    production = os.environ["DJANGO_SETTINGS_MODULE"].endswith(".production")
    if not production:
        # Development, tests, the demo: the embedded PostgreSQL and Redis unless the environment names
        # servers (settings only say where they listen; commands start them).
        from gateway.embedded import start_if_unconfigured

        start_if_unconfigured()
    from django.core.management import execute_from_command_line

    command = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        from django.core.exceptions import ImproperlyConfigured

        if production and isinstance(exc, ImproperlyConfigured):
            # A missing or development setting: the one line that names it, not a traceback.
            sys.stderr.write(f"manage.py {command}: {exc}\n")
            sys.exit(2)
        missing = _missing_relation(exc)
        if missing is None or command.startswith("migrate"):
            raise
        # A database that was never migrated (or only in part): say what to run, not a traceback.
        from django.db import connection

        sys.stderr.write(
            f"manage.py {command}: the database {connection.settings_dict['NAME']!r} is not migrated"
            f" ({missing}).\nMigrate it first (make demo does this too), then run the command again:\n{MIGRATE}"
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
