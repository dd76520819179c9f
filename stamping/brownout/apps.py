from django.apps import AppConfig


class BrownoutConfig(AppConfig):
    name = "stamping.brownout"
    label = "brownout"
    verbose_name = "Brownout controls (issuer-wide)"
