"""What the tenants domain announces. Receivers live with whoever reacts (the edge issues API keys),
so the domain never imports them."""

from django.dispatch import Signal

# Sent by ``provision_channel`` inside the transaction that creates the channel's rows, with
# ``channel``. A receiver may return the credentials it created for the channel (the edge returns
# the first API key, shown once); a receiver that raises undoes the whole provisioning.
channel_provisioned = Signal()
