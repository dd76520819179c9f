from django.db import migrations

from outbox.sql import create_enqueue_event


def create(apps, schema_editor):
    schema = schema_editor.quote_name(schema_editor.connection.schema_name)
    schema_editor.execute(create_enqueue_event(schema), params=None)  # no client-side % merging


class Migration(migrations.Migration):
    """``outbox_enqueue_event`` in PL/pgSQL, its plans kept for the session (``outbox.sql``)."""

    dependencies = [("outbox", "0003_enqueue_event_function")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
