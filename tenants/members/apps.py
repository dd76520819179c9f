from django.apps import AppConfig


class MembersConfig(AppConfig):
    """A channel's portal team (channel schema): members, their roles and their one-time links."""

    name = "tenants.members"
    label = "members"
    verbose_name = "Channel portal members"
