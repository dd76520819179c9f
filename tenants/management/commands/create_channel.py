"""``manage.py create_channel --code pos --name "Pos Indonesia" --domain pos.localhost``"""

from __future__ import annotations

import json
import secrets

from django.core.management.base import BaseCommand, CommandError

from kernel.errors import ApplicationError
from tenants.services import ensure_issuer, provision_channel


class Command(BaseCommand):
    help = "Provision a channel: schema, host, first portal admin and first API key (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", required=True)
        parser.add_argument("--admin", default="admin", help="username of the first portal admin")
        parser.add_argument("--password", help="portal admin password (generated and printed when omitted)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **opts):
        ensure_issuer()
        password = opts["password"] or secrets.token_urlsafe(12)
        try:
            result = provision_channel(
                code=opts["code"],
                name=opts["name"],
                domain=opts["domain"],
                admin_username=opts["admin"],
                admin_password=password,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        summary = {
            "channel": result.channel.code,
            "schema": result.channel.schema_name,
            "domain": result.domain.domain,
            "admin_username": result.admin_username,
            "admin_password": password,
            "api_key": result.api_key.plaintext,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(self.style.SUCCESS(f"Channel {summary['channel']} ready at http://{summary['domain']}/"))
        self.stdout.write(f"  portal admin: {summary['admin_username']} / {password}")
        self.stdout.write(f"  API key (shown once, store it now): {summary['api_key']}")
