# Takes over the webhook models from the edge app (edge.0001 made the tables): state only.
import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("edge", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEndpoint",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("url", models.URLField(max_length=500)),
                        ("secret", models.CharField(help_text="Signs every delivery (HMAC-SHA256); shown to the channel.", max_length=100)),
                        ("events", django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=100), blank=True, default=list, size=None)),
                        ("active", models.BooleanField(default=True)),
                        ("description", models.CharField(blank=True, max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "edge_webhookendpoint", "ordering": ("id",)},
                ),
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("event_id", models.CharField(max_length=40)),
                        ("event_type", models.CharField(max_length=100)),
                        ("payload", models.JSONField()),
                        ("status", models.CharField(choices=[("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed")], default="pending", max_length=16)),
                        ("attempt_count", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("last_response_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True)),
                        ("attempts", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        ("endpoint", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="deliveries", to="outbox.webhookendpoint")),
                    ],
                    options={
                        "db_table": "edge_webhookdelivery",
                        "ordering": ("id",),
                        "indexes": [models.Index(condition=models.Q(("status", "pending")), fields=["next_attempt_at"], name="edge_webhook_due")],
                        "constraints": [models.UniqueConstraint(fields=("endpoint", "event_id"), name="edge_webhook_event_once_per_endpoint")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
