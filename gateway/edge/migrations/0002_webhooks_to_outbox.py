# The webhook models move to the outbox app: state only, the tables stay as they are.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("edge", "0001_initial"),
        ("outbox", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="WebhookDelivery"),
                migrations.DeleteModel(name="WebhookEndpoint"),
            ],
            database_operations=[],
        ),
    ]
