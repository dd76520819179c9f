"""A child process for crash tests: does one billing step and is SIGKILLed at a fault point.

python -m tests.billing.crash_child credit <order_id> <payment_ref>
python -m tests.billing.crash_child commit <hold_id>
"""

from __future__ import annotations

import sys

import django


def main(argv: list[str]) -> None:
    django.setup()
    from django.db import transaction
    from django_tenants.utils import schema_context

    from billing import quota
    from billing.providers import PaymentEvent
    from billing.retail import services as retail
    from billing.retail.models import Order
    from kernel import faults
    from tenants.models import Channel

    if argv[1] == "credit":
        channel = Channel.objects.get(code="alpha")
        with schema_context("alpha"):
            order = Order.objects.get(pk=argv[2])
            retail.apply_payment_event(
                channel=channel,
                provider_name="simulator",
                event=PaymentEvent(
                    provider_ref=argv[3], order_id=order.pk, succeeded=True, amount_rupiah=order.total_rupiah
                ),
            )
        faults.point("child.after_commit")
    elif argv[1] == "commit":
        with transaction.atomic():
            quota.commit_hold(hold_id=argv[2])
            faults.point("child.commit.inside_transaction")
        faults.point("child.after_commit")
    print("done")


if __name__ == "__main__":
    main(sys.argv)
