from django.db import migrations

from kernel.migration_ops import InChannelSchema
from outbox.sql import create_enqueue_event


class Migration(migrations.Migration):
    """``outbox_enqueue_event`` in PL/pgSQL, its plans kept for the session (``outbox.sql``)."""

    dependencies = [("outbox", "0003_enqueue_event_function")]

    operations = [InChannelSchema(create_enqueue_event)]
