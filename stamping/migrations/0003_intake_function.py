from django.db import migrations

from stamping.sql import DROP_INTAKE, create_intake


def _schema(schema_editor) -> str:
    return schema_editor.quote_name(schema_editor.connection.schema_name)


def create(apps, schema_editor):
    schema_editor.execute(create_intake(_schema(schema_editor)), params=None)  # no client-side % merging


def drop(apps, schema_editor):
    schema_editor.execute(DROP_INTAKE.replace("{schema}", _schema(schema_editor)), params=None)


class Migration(migrations.Migration):
    """The stamp intake in one round trip: ``stamping_intake`` in every channel schema."""

    dependencies = [
        ("stamping", "0002_lanes"),
        ("portal", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
