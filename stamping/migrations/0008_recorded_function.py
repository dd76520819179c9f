from django.db import migrations

from stamping.sql import DROP_RECORDED, create_recorded


def _schema(schema_editor) -> str:
    return schema_editor.quote_name(schema_editor.connection.schema_name)


def create(apps, schema_editor):
    schema_editor.execute(create_recorded(_schema(schema_editor)), params=None)  # no client-side % merging


def drop(apps, schema_editor):
    schema_editor.execute(DROP_RECORDED.replace("{schema}", _schema(schema_editor)), params=None)


class Migration(migrations.Migration):
    """The stamped job's recording in the issuer's one statement: ``stamping_recorded`` (``stamping.sql``)."""

    dependencies = [
        ("stamping", "0007_serial_reservation"),
        ("outbox", "0003_enqueue_event_function"),
    ]

    operations = [migrations.RunPython(create, drop)]
