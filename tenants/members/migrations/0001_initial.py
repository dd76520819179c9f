import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def existing_users_are_owners(apps, schema_editor):
    """Before teams, a channel had one shared admin login: it becomes the channel's owner."""
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Member = apps.get_model("members", "Member")
    for user in User.objects.filter(is_staff=True):
        Member.objects.get_or_create(user=user, defaults={"email": user.email or "", "role": "owner",
                                                          "joined_at": user.date_joined})  # fmt: skip


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Member",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254)),
                ("role", models.CharField(choices=[("owner", "Owner"), ("developer", "Developer"), ("finance", "Finance"), ("support", "Support")], max_length=16)),
                ("invited_by", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("joined_at", models.DateTimeField(blank=True, help_text="When the invitation was accepted.", null=True)),
                ("removed_at", models.DateTimeField(blank=True, null=True)),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="membership", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ("email",)},
        ),
        migrations.CreateModel(
            name="OneTimeLink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("purpose", models.CharField(choices=[("invitation", "Invitation"), ("password_reset", "Password reset")], max_length=16)),
                ("digest", models.CharField(help_text="SHA-256 of the token (hex); never the token.", max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ("-created_at",)},
        ),
        migrations.RunPython(existing_users_are_owners, migrations.RunPython.noop),
    ]
