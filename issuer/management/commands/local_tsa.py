"""``manage.py local_tsa [--port 8082]``: a local RFC 3161 time-stamping authority for development.

Its certificate is issued by the development root CA that ``manage.py dev_keys`` keeps under
``ISSUER_DEV_CA_DIR`` (the root the demo's stamps chain to), so demo stamps are PAdES B-T and a
verifier that trusts that root trusts their time stamps.  ``make demo`` starts it and points
``ISSUER_TSA_URL`` at it.  Refused when a real signing key is configured or development keys are
off: a production issuer uses a real TSA.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from issuer.signing.keys import create_dev_keys, issue_certificate, load_dev_root_ca
from issuer.signing.local_tsa import TimeStampAuthority, TsaServer


class Command(BaseCommand):
    help = "Run a local RFC 3161 time-stamping authority (development only) on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8082)

    def handle(self, *args, **opts):
        if settings.ISSUER_SIGNING_PKCS12 or settings.ISSUER_SIGNING_KEY:
            raise CommandError(
                "A signing key is configured: the local TSA is for the development keys only. "
                "Set ISSUER_TSA_URL to your time-stamping authority instead.",
                returncode=2,
            )
        if not settings.ISSUER_DEV_KEYS:
            raise CommandError("Development keys are off (ISSUER_DEV_KEYS): use a real TSA.", returncode=2)
        ca_directory = Path(settings.ISSUER_DEV_CA_DIR)
        create_dev_keys(Path(settings.ISSUER_KEY_DIR), ca_directory=ca_directory)  # as `manage.py dev_keys`
        try:
            root_key, root_cert = load_dev_root_ca(ca_directory)
        except OSError:
            raise CommandError(
                f"The development root CA key is not in {ca_directory} (development keys made without it): "
                "remove ISSUER_KEY_DIR and run `manage.py dev_keys` to make a new development CA.",
                returncode=2,
            ) from None
        key, cert = issue_certificate(root_key, root_cert, "e-Meterai Development TSA", timestamping=True)
        try:
            server = TsaServer(TimeStampAuthority(key, cert), port=opts["port"])
        except OSError as exc:
            raise CommandError(f"Cannot listen on 127.0.0.1:{opts['port']}: {exc}", returncode=2) from None
        with server:
            self.stdout.write(f"Local time-stamping authority at {server.url}", ending="\n")
            self.stdout.flush()
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
