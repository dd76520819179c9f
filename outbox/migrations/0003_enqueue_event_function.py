from django.db import migrations

from outbox.sql import DROP_ENQUEUE_EVENT, create_enqueue_event


def _schema(schema_editor) -> str:
    return schema_editor.quote_name(schema_editor.connection.schema_name)


def create(apps, schema_editor):
    schema_editor.execute(create_enqueue_event(_schema(schema_editor)), params=None)  # no client-side % merging


def drop(apps, schema_editor):
    schema_editor.execute(DROP_ENQUEUE_EVENT.replace("{schema}", _schema(schema_editor)), params=None)


class Migration(migrations.Migration):
    """An event's deliveries written by SQL (``outbox.sql``), for the stamped job's one-statement recording."""

    dependencies = [("outbox", "0002_delivery_bare")]

    operations = [migrations.RunPython(create, drop)]
