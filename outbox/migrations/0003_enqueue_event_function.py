from django.db import migrations

from kernel.migration_ops import InChannelSchema
from outbox.sql import DROP_ENQUEUE_EVENT, create_enqueue_event


class Migration(migrations.Migration):
    """An event's deliveries written by SQL (``outbox.sql``), for the stamped job's one-statement recording."""

    dependencies = [("outbox", "0002_delivery_bare")]

    operations = [InChannelSchema(create_enqueue_event, DROP_ENQUEUE_EVENT)]
