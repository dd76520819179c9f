from django.db import migrations

from billing.ledger.sql import CREATE_FUNCTIONS_V1, DROP_FUNCTIONS


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(CREATE_FUNCTIONS_V1, DROP_FUNCTIONS)]
