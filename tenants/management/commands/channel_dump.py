"""``manage.py channel_dump --channel CODE --file PATH``: a channel's schema (its customers, orders,
stamping jobs and uploads, webhooks, idempotency records) in ``pg_dump``'s custom format.

What is global (channels and hosts, the ledger, serials and stamped documents, staff, the audit log)
lives in the ``public`` schema and is backed up with the whole database (docs/operations.md).
"""

from __future__ import annotations

import subprocess

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kernel.pgtools import ProgramNotFound, libpq_environment, program
from tenants.models import Channel


def channel_or_error(code: str) -> Channel:
    channel = Channel.objects.filter(code=code, kind=Channel.Kind.CHANNEL).first()
    if channel is None:
        raise CommandError(f"No channel {code!r}.")
    return channel


class Command(BaseCommand):
    help = "Dump one channel's schema with pg_dump (custom format)."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        parser.add_argument("--file", required=True, help="Where to write the dump.")

    def handle(self, *args, **options):
        channel = channel_or_error(options["channel"])
        connection.ensure_connection()
        try:
            pg_dump = program("pg_dump", server_version_num=connection.pg_version, bin_dir=settings.PG_BIN_DIR)
        except ProgramNotFound as exc:
            raise CommandError(str(exc)) from exc
        argv = [str(pg_dump), "--format=custom", "--no-owner", "--no-privileges",
                f"--schema={channel.schema_name}", f"--file={options['file']}"]  # fmt: skip
        done = subprocess.run(argv, env=libpq_environment(connection.settings_dict), capture_output=True, text=True)  # noqa: S603
        if done.returncode != 0:
            raise CommandError(f"pg_dump failed: {done.stderr.strip()}")
        self.stdout.write(f"dumped channel {channel.code} (schema {channel.schema_name}) to {options['file']}")
