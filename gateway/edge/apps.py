from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "gateway.edge"
    label = "edge"
    verbose_name = "Edge (per channel)"
