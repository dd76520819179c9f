from django.apps import AppConfig


class CustomersConfig(AppConfig):
    """A channel's customers (channel schema). The label stays ``portal``, where the app began: its
    migrations and tables are named after it."""

    name = "tenants.customers"
    label = "portal"
    verbose_name = "Channel customers"
