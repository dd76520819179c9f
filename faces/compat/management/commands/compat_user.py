"""``manage.py compat_user --channel pos --user kasir1 --customer 42 --key <prefix> [--email e]``
``manage.py compat_user --channel pos --user kasir1 --set-password``
``manage.py compat_user --channel pos --list``

Compat users log in to the facade of the issuer's API (``/compat/``, docs/compat.md). A user spends
the wallet of ``--customer`` and acts with the scopes and rate limits of the API key ``--key`` (its
prefix, as the portal shows it). The password is read from the terminal (or ``COMPAT_USER_PASSWORD``
for scripts), never from the command line.
"""

from __future__ import annotations

import getpass
import json
import os

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from faces.compat.accounts import create_compat_user, set_compat_password
from faces.compat.models import CompatUser
from gateway.models import ApiKey
from kernel.errors import ApplicationError
from tenants.models import Channel


class Command(BaseCommand):
    help = "Create a compat user (the issuer-API facade's login), set its password, or list them."

    def add_arguments(self, parser):
        parser.add_argument("--channel", required=True)
        parser.add_argument("--user")
        parser.add_argument("--customer", type=int)
        parser.add_argument("--key", help="The API key's prefix: the user gets its scopes and rate limits.")
        parser.add_argument("--email", default="")
        parser.add_argument("--set-password", action="store_true")
        parser.add_argument("--list", action="store_true")

    def _password(self) -> str:
        password = os.environ.get("COMPAT_USER_PASSWORD")
        if password:
            return password
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return password

    def handle(self, *args, **options):
        channel = Channel.objects.filter(code=options["channel"], kind=Channel.Kind.CHANNEL).first()
        if channel is None:
            raise CommandError(f"No channel {options['channel']!r}.")
        with schema_context(channel.schema_name):
            if options["list"]:
                for user in CompatUser.objects.all():
                    self.stdout.write(
                        json.dumps({"user": user.username, "customer": user.customer_id, "active": user.active})
                    )
                return
            if not options["user"]:
                raise CommandError("Give --user.")
            try:
                if options["set_password"]:
                    set_compat_password(username=options["user"], password=self._password())
                    self.stdout.write(f"New password set for {options['user']}; its earlier tokens no longer work.")
                    return
                if options["customer"] is None or not options["key"]:
                    raise CommandError("Give --customer and --key to create a user.")
                api_key = ApiKey.objects.filter(prefix=options["key"], channel=channel).first()
                if api_key is None:
                    raise CommandError(f"No API key with prefix {options['key']!r} in {channel.code}.")
                user = create_compat_user(
                    channel=channel,
                    username=options["user"],
                    password=self._password(),
                    customer_id=options["customer"],
                    api_key=api_key,
                    email=options["email"],
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
        self.stdout.write(json.dumps({"user": user.username, "customer": user.customer_id, "key": api_key.prefix}))
