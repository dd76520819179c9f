"""A job's document keeps the intake's inspection of it (``JobDocument.facts``, ``issuer.facts``),
and ``stamping_intake`` writes it: the worker no longer parses and hashes the upload a second time.

The function gains a last argument, ``p_facts``, with a default: the definition with one argument less
is dropped (two definitions would make a call ambiguous), and a web process of the earlier release
that still calls it with 23 arguments finds this one and writes no facts (its jobs are inspected
again by the worker, as before). Reversed, the earlier definition is put back.
"""

from django.db import migrations, models

from kernel.migration_ops import InChannelSchema
from stamping.sql import CREATE_INTAKE, INTAKE_ARGS_BEFORE_FACTS, create_intake

_DROP_BEFORE = f"DROP FUNCTION IF EXISTS {{schema}}.stamping_intake({INTAKE_ARGS_BEFORE_FACTS});\n"
_EARLIER = (
    CREATE_INTAKE.replace(", p_facts text DEFAULT NULL", "")
    .replace("sealed_password, facts)", "sealed_password)")
    .replace("p_sealed_password, p_facts)", "p_sealed_password)")
)
# The earlier definition is this one without the facts; should the current one change so that these
# replacements miss, this migration must not put back a definition that is not the earlier one.
assert "facts" not in _EARLIER, "stamping 0009: rebuild the earlier stamping_intake by hand"


def _with_facts(schema: str) -> str:
    return _DROP_BEFORE.replace("{schema}", schema) + create_intake(schema)


class Migration(migrations.Migration):
    dependencies = [("stamping", "0008_recorded_function")]

    operations = [
        migrations.AddField(model_name="jobdocument", name="facts", field=models.TextField(null=True)),
        InChannelSchema(
            _with_facts,
            f"DROP FUNCTION IF EXISTS {{schema}}.stamping_intake({INTAKE_ARGS_BEFORE_FACTS}, text);\n{_EARLIER}",
        ),
    ]
