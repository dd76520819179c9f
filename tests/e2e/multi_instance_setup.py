"""Prepares the database of the multi-instance test (``python -m tests.e2e.multi_instance_setup``, run
with that database's ``DATABASE_URL``): migrations, the issuer, two channels, the shared development
signing key (as every machine would share the HSM), funded customers. Prints one JSON object."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.test")


def main(customers: int) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from issuer.signing.keys import create_dev_keys
    from tenants.customers.models import Customer
    from tenants.models import Channel
    from tenants.services import ensure_issuer, provision_channel
    from tests.billing.factories import funded_wallet

    call_command("migrate_schemas", "--shared", verbosity=0)
    ensure_issuer(domains=["issuer.multi.test"])
    create_dev_keys(settings.ISSUER_KEY_DIR)
    keys = {}
    for code in ("alpha", "beta"):
        provisioned = provision_channel(code=code, name=f"{code} multi", domain=f"{code}.multi.test",
                                        admin_password="portal-pass-123")  # fmt: skip
        keys[code] = provisioned.api_key.plaintext
    # beta: a small rate limit, to show that two web instances share one bucket
    Channel.objects.filter(code="beta").update(rate_limit_per_key=1, rate_limit_per_channel=1, rate_limit_burst=4)
    alpha = Channel.objects.get(code="alpha")
    ids = []
    for i in range(customers):
        customer_id = funded_wallet(channel_id=alpha.pk, units=2)
        with schema_context("alpha"):
            Customer.objects.create(id=customer_id, external_ref=f"multi-{i}", name=f"Multi {i}")
        ids.append(customer_id)
    return {"keys": keys, "customers": ids, "alpha_id": alpha.pk}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)))
