from django.db import migrations

from kernel.migration_ops import InChannelSchema
from stamping.sql import DROP_INTAKE, create_intake


class Migration(migrations.Migration):
    """The stamp intake in one round trip: ``stamping_intake`` in every channel schema."""

    dependencies = [
        ("stamping", "0002_lanes"),
        ("portal", "0001_initial"),
    ]

    operations = [InChannelSchema(create_intake, DROP_INTAKE)]
