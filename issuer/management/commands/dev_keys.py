"""``manage.py dev_keys``: make the development signing key and certificates under ``ISSUER_KEY_DIR``.

The explicit step that replaces "made on first use": the demo and the test setup run it, a request
never does. Refused unless ``ISSUER_DEV_KEYS`` is on (development and test settings only). The
development root CA's private key is kept apart, under ``ISSUER_DEV_CA_DIR`` (the demo's local TSA
issues its certificate from it); one left beside the signing key by an older version is moved there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from issuer.signing.keys import DEV_ROOT_CERT, DEV_ROOT_KEY, create_dev_keys


class Command(BaseCommand):
    help = "Make development signing keys under ISSUER_KEY_DIR unless they exist (never in production)."

    def handle(self, *args, **options):
        if not settings.ISSUER_DEV_KEYS:
            raise CommandError("Development keys are off (ISSUER_DEV_KEYS); configure a real signing key instead.")
        directory = Path(settings.ISSUER_KEY_DIR)
        ca_directory = Path(settings.ISSUER_DEV_CA_DIR)
        made = create_dev_keys(directory, ca_directory=ca_directory)
        legacy = directory / DEV_ROOT_KEY
        if legacy.exists():
            if (ca_directory / DEV_ROOT_KEY).exists():
                legacy.unlink()
            else:
                ca_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copy2(directory / DEV_ROOT_CERT, ca_directory / DEV_ROOT_CERT)
                legacy.rename(ca_directory / DEV_ROOT_KEY)
            self.stdout.write(f"Moved the development root CA key from {directory} to {ca_directory}.")
        self.stdout.write(f"{'Made' if made else 'Kept'} the development signing key in {directory}.")
