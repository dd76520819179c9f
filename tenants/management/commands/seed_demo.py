"""Seed the demo: the issuer with its two staff users (one records deposits, the other confirms them),
channels ``pos`` and ``retail``, a few customers.

Idempotent: running it again changes nothing and prints the same credentials (kept in
``.data/demo-credentials.json``, outside the repository, because API keys are shown only once).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from billing.deposits import confirm_deposit, create_deposit
from billing.providers import PaymentEvent
from billing.retail import services as retail
from gateway.apikeys import issue_api_key
from tenants.customers.models import Customer
from tenants.models import Channel
from tenants.services import ensure_issuer, provision_channel

DEMO_CHANNELS = [
    ("pos", "Pos Indonesia", "pos.localhost"),
    ("retail", "Retail Meterai", "retail.localhost"),
]
DEMO_CUSTOMERS = [
    ("Siti Rahmawati", "siti@example.id"),
    ("Budi Santoso", "budi@example.id"),
    ("Dewi Lestari", "dewi@example.id"),
]
DEMO_STOCK = 10_000  # units allocated to each demo channel against a confirmed demo deposit
STAFF_USER = "issuer"
STAFF_PASSWORD = "issuer-demo-pass"  # noqa: S105 - a demo credential, printed on purpose
# Maker-checker: STAFF_USER records deposits, CHECKER_USER confirms them (nobody confirms their own).
CHECKER_USER = "checker"
CHECKER_PASSWORD = "checker-demo-pass"  # noqa: S105
PORTAL_PASSWORD = "portal-demo-pass"  # noqa: S105


def _buy(*, channel, customer, units: int) -> None:
    """A paid order through the real path (order, then the simulator provider's payment event)."""
    order = retail.create_order(channel=channel, customer=customer, quantity=units)
    retail.apply_payment_event(
        channel=channel, provider_name="simulator",
        event=PaymentEvent(provider_ref=f"demo-{order.pk}", order_id=order.pk, succeeded=True,
                           amount_rupiah=order.total_rupiah),
    )


class Command(BaseCommand):
    help = "Seed the demo data (idempotent) and print the demo credentials as JSON."

    def handle(self, *args, **options):
        path = settings.DATA_DIR / "demo-credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}

        ensure_issuer(domains=["localhost", "127.0.0.1"])
        user_model = get_user_model()
        if not user_model.objects.filter(username=STAFF_USER).exists():
            user_model.objects.create_superuser(STAFF_USER, "issuer@example.id", STAFF_PASSWORD)
        if not user_model.objects.filter(username=CHECKER_USER).exists():
            checker = user_model.objects.create_user(
                CHECKER_USER, "checker@example.id", CHECKER_PASSWORD, is_staff=True
            )
            checker.groups.add(Group.objects.get(name="Stock approvers"))

        channels = saved.get("channels", {})
        for code, name, domain in DEMO_CHANNELS:
            channel = Channel.objects.filter(code=code).first()
            if channel is None:
                result = provision_channel(code=code, name=name, domain=domain, admin_password=PORTAL_PASSWORD)
                api_key = result.api_key.plaintext
            elif code not in channels:
                # The channel exists but its demo credentials were lost: issue a fresh demo key.
                api_key = issue_api_key(channel=channel, name="Demo key").plaintext
                with schema_context(code):
                    admin, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True})
                    admin.set_password(PORTAL_PASSWORD)
                    admin.save()
            else:
                api_key = channels[code]["api_key"]
            channels[code] = {
                "url": f"http://{domain}:8000/",
                "portal_user": "admin",
                "portal_password": PORTAL_PASSWORD,
                "api_key": api_key,
            }
            channel = Channel.objects.get(code=code)
            deposit = create_deposit(
                channel=channel, units=DEMO_STOCK, reference=f"DEMO-{code.upper()}-1", recorded_by="seed_demo"
            )
            confirm_deposit(deposit_id=deposit.pk, confirmed_by="seed_demo")
            with schema_context(code):
                for index, (customer_name, email) in enumerate(DEMO_CUSTOMERS, start=1):
                    customer, created = Customer.objects.get_or_create(
                        external_ref=f"{code}-{index:04d}", defaults={"name": customer_name, "email": email}
                    )
                    if created and index == 1:
                        _buy(channel=channel, customer=customer, units=5)
        saved = {
            "issuer": {
                "url": "http://localhost:8000/",
                "staff_user": STAFF_USER,
                "staff_password": STAFF_PASSWORD,
                "checker_user": CHECKER_USER,
                "checker_password": CHECKER_PASSWORD,
            },
            "channels": channels,
        }
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
        self.stdout.write(json.dumps(saved))
