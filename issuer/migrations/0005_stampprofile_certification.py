"""The certification level becomes part of a profile: ``default`` stamps with an approval signature
(a second e-Meterai or a later signature stays possible), ``cpns`` stays final (DocMDP P=1)."""

from django.db import migrations, models


def cpns_is_final(apps, schema_editor):
    StampProfile = apps.get_model("issuer", "StampProfile")
    StampProfile.objects.filter(name="cpns").update(certification="no_changes")


def back(apps, schema_editor):
    pass


class Migration(migrations.Migration):
    dependencies = [("issuer", "0004_incident_note")]

    operations = [
        migrations.AddField(
            model_name="stampprofile",
            name="certification",
            field=models.CharField(
                choices=[
                    ("not_certified", "Not certified: later e-Meterai and signatures stay possible"),
                    ("no_changes", "Final: certified, no changes allowed (stamp last)"),
                ],
                default="not_certified",
                help_text="How the stamp signs: an approval signature, or a certification that allows no later change.",
                max_length=16,
            ),
        ),
        migrations.RunPython(cpns_is_final, back),
    ]
