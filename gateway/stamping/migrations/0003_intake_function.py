from django.db import migrations

from gateway.stamping.sql import CREATE_INTAKE, DROP_INTAKE


class Migration(migrations.Migration):
    """The stamp intake in one round trip: ``stamping_intake`` in every channel schema."""

    dependencies = [
        ("stamping", "0002_lanes"),
        ("portal", "0001_initial"),
    ]

    operations = [migrations.RunSQL(CREATE_INTAKE, DROP_INTAKE)]
