from django.apps import AppConfig


class RetailConfig(AppConfig):
    name = "billing.retail"
    label = "retail"
    verbose_name = "Retail orders and payments"
