"""``manage.py channel_restore --channel CODE --file PATH [--replace]``: put back a channel's schema from
``channel_dump``. The channel must exist (its row is global); its schema must be absent, or
``--replace`` drops it first (everything written since the dump is lost: stop the channel's traffic
first with ``channel_status --suspend``, and run ``reconcile`` afterwards, since the ledger is global).
"""

from __future__ import annotations

import subprocess

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kernel.pgtools import ProgramNotFound, libpq_environment, program
from tenants.management.commands.channel_dump import channel_or_error


class Command(BaseCommand):
    help = "Restore one channel's schema from a channel_dump file."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        parser.add_argument("--file", required=True)
        parser.add_argument("--replace", action="store_true", help="Drop the channel's current schema first.")

    def handle(self, *args, **options):
        channel = channel_or_error(options["channel"])
        schema = channel.schema_name
        connection.ensure_connection()
        try:
            pg_restore = program("pg_restore", server_version_num=connection.pg_version, bin_dir=settings.PG_BIN_DIR)
        except ProgramNotFound as exc:
            raise CommandError(str(exc)) from exc
        aside = f"{schema}__before_restore"
        quoted, quoted_aside = connection.ops.quote_name(schema), connection.ops.quote_name(aside)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
            exists = cursor.fetchone() is not None
            if exists and not options["replace"]:
                raise CommandError(f"Schema {schema} exists; add --replace to drop it and restore the dump.")
            if exists:  # set aside, not dropped, until the dump is in: a failed restore puts it back
                cursor.execute(f"DROP SCHEMA IF EXISTS {quoted_aside} CASCADE")
                cursor.execute(f"ALTER SCHEMA {quoted} RENAME TO {quoted_aside}")
        connection.close()  # nothing of this process may hold the schema while it is restored
        argv = [str(pg_restore), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                f"--dbname={connection.settings_dict['NAME']}", options["file"]]  # fmt: skip
        done = subprocess.run(argv, env=libpq_environment(connection.settings_dict), capture_output=True, text=True)  # noqa: S603
        with connection.cursor() as cursor:
            if done.returncode != 0:
                if exists:
                    cursor.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
                    cursor.execute(f"ALTER SCHEMA {quoted_aside} RENAME TO {quoted}")
                raise CommandError(f"pg_restore failed (the schema is as it was): {done.stderr.strip()}")
            if exists:
                cursor.execute(f"DROP SCHEMA {quoted_aside} CASCADE")
        self.stdout.write(f"restored channel {channel.code} (schema {schema}) from {options['file']}")
