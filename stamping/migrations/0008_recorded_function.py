from django.db import migrations

from kernel.migration_ops import InChannelSchema
from stamping.sql import DROP_RECORDED, create_recorded


class Migration(migrations.Migration):
    """The stamped job's recording in the issuer's one statement: ``stamping_recorded`` (``stamping.sql``)."""

    dependencies = [
        ("stamping", "0007_serial_reservation"),
        ("outbox", "0003_enqueue_event_function"),
    ]

    operations = [InChannelSchema(create_recorded, DROP_RECORDED)]
