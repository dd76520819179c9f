from django.apps import AppConfig


class CompatConfig(AppConfig):
    """The drop-in facade of the issuer's e-Meterai API (``/compat/`` on a channel host): its users
    (credentials mapped to an API key) and the documents they upload before a stamp."""

    name = "faces.compat"
    label = "compat"
    default_auto_field = "django.db.models.BigAutoField"
