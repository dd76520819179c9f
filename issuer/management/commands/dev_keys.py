"""``manage.py dev_keys``: make the development signing key and certificates under ``ISSUER_KEY_DIR``.

The explicit step that replaces "made on first use": the demo and the test setup run it, a request
never does. Refused unless ``ISSUER_DEV_KEYS`` is on (development and test settings only). The
development root CA's private key is not kept (nothing needs it after issuing the signing
certificate); one left beside the signing key by an older version is removed.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from issuer.signing.keys import DEV_ROOT_KEY, create_dev_keys


class Command(BaseCommand):
    help = "Make development signing keys under ISSUER_KEY_DIR unless they exist (never in production)."

    def handle(self, *args, **options):
        if not settings.ISSUER_DEV_KEYS:
            raise CommandError("Development keys are off (ISSUER_DEV_KEYS); configure a real signing key instead.")
        directory = Path(settings.ISSUER_KEY_DIR)
        made = create_dev_keys(directory)
        legacy = directory / DEV_ROOT_KEY
        if legacy.exists():
            legacy.unlink()
            self.stdout.write(f"Removed the development root CA key from {directory}.")
        self.stdout.write(f"{'Made' if made else 'Kept'} the development signing key in {directory}.")
