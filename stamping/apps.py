from django.apps import AppConfig


class StampingConfig(AppConfig):
    name = "stamping"
    label = "stamping"
    verbose_name = "Stamping jobs (per channel)"
