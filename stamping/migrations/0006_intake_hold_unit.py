from django.db import migrations

from kernel.migration_ops import InChannelSchema
from stamping.sql import create_intake


class Migration(migrations.Migration):
    """The intake holds its unit through ``ledger_hold_unit`` (ledger 0007), the one definition of a hold."""

    dependencies = [("stamping", "0005_document_storage_external")]

    operations = [InChannelSchema(create_intake)]
