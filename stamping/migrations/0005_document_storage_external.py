"""Store uploaded documents out of line without compression.

A PDF's content is already compressed (Flate, JPEG): with the default EXTENDED storage PostgreSQL
tries pglz on every upload first and gives up. The issuer's stamped files have been stored this way
since ``issuer.0003``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("stamping", "0004_lean_indexes")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE stamping_jobdocument ALTER COLUMN original SET STORAGE EXTERNAL",
            "ALTER TABLE stamping_jobdocument ALTER COLUMN original SET STORAGE EXTENDED",
        )
    ]
