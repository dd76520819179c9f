"""Store the facade's uploads out of line without compression, as ``stamping.0005`` does for the API's.

A PDF's content is already compressed (Flate, JPEG): with the default EXTENDED storage PostgreSQL
tries pglz on every upload first and gives up. Measured on this machine, an INSERT of the ~800 KB
scan of ``tests/fixtures/pdfs``: 11.8-12.2 ms with EXTENDED, 1.9 ms with EXTERNAL (the stored bytes
are the same: the compression failed).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("compat", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE compat_compatupload ALTER COLUMN data SET STORAGE EXTERNAL",
            "ALTER TABLE compat_compatupload ALTER COLUMN data SET STORAGE EXTENDED",
        )
    ]
