from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway edge"

    def ready(self) -> None:
        from gateway import apikeys
        from tenants.signals import channel_provisioned

        # A new channel gets its first API key from the edge, inside the provisioning transaction.
        channel_provisioned.connect(apikeys.issue_first_key, dispatch_uid="gateway.apikeys.issue_first_key")
