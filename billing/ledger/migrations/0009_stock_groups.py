"""The two staff groups of maker-checker deposits: "Stock recorders" may record a channel's deposit,
"Stock approvers" may confirm one (never their own: ``billing.deposits.confirm_deposit`` refuses it).

Django creates permissions after all migrations ran (``post_migrate``); this makes the two it needs
first, so the groups have them on a fresh database too.
"""

from django.db import migrations

GROUPS = {
    "Stock recorders": ["record_deposit"],
    "Stock approvers": ["confirm_deposit"],
}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="ledger", model="deposit")
    names = {
        "record_deposit": "Can record a channel's deposit",
        "confirm_deposit": "Can confirm a deposit recorded by someone else (allocates its units)",
    }
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for codename in codenames:
            permission, _ = Permission.objects.get_or_create(
                content_type=content_type, codename=codename, defaults={"name": names[codename]}
            )
            group.permissions.add(permission)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_deposit_maker_checker"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
