from django.db import migrations

from billing.ledger.sql import CREATE_HOLD_UNIT, DROP_HOLD_UNIT


class Migration(migrations.Migration):
    """The stamping hold as one ledger function, which the stamp intake and ``hold_quota`` both call."""

    dependencies = [("ledger", "0006_drop_like_indexes")]

    operations = [migrations.RunSQL(CREATE_HOLD_UNIT, DROP_HOLD_UNIT)]
