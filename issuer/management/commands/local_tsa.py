"""``manage.py local_tsa [--port 8082]``: a local RFC 3161 time-stamping authority for development.

Its certificate is issued by the development root under ``ISSUER_KEY_DIR`` (the root the demo's
stamps chain to), so demo stamps are PAdES B-T and a verifier that trusts that root trusts their
time stamps.  ``make demo`` starts it and points ``ISSUER_TSA_URL`` at it.  Refused when a real
signing key is configured: a production issuer uses a real TSA.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from issuer.signing import load_or_create_dev_keys
from issuer.signing.keys import issue_certificate, load_dev_root_ca
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
        directory = Path(settings.ISSUER_KEY_DIR)
        load_or_create_dev_keys(directory)  # the root exists from here on
        root_key, root_cert = load_dev_root_ca(directory)
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
