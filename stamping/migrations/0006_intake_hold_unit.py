from django.db import migrations

from stamping.sql import create_intake


def create(apps, schema_editor):
    schema = schema_editor.quote_name(schema_editor.connection.schema_name)
    schema_editor.execute(create_intake(schema), params=None)  # no client-side % merging


class Migration(migrations.Migration):
    """The intake holds its unit through ``ledger_hold_unit`` (ledger 0007), the one definition of a hold."""

    dependencies = [("stamping", "0005_document_storage_external")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
