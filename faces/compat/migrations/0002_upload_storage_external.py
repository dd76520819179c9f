"""Store the facade's uploads out of line without compression, as ``stamping.0005`` does for the API's.

Measured on this machine, an INSERT of the ~800 KB scan of ``tests/fixtures/pdfs``: 11.8-12.2 ms with
PostgreSQL's default EXTENDED storage (a pglz attempt that fails), 1.9 ms with EXTERNAL.
"""

from django.db import migrations

from kernel.migration_ops import StoreWithoutCompression


class Migration(migrations.Migration):
    dependencies = [("compat", "0001_initial")]

    operations = [StoreWithoutCompression("compat_compatupload", "data")]
