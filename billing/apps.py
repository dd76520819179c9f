from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Holds billing's commands and periodic tasks (models live in billing.ledger and billing.retail)."""

    name = "billing"
    verbose_name = "Billing"
