"""Store a top-up's proof of transfer (a PDF or an image: compressed already) out of line without
compression, as the uploads are (``stamping.0005``): PostgreSQL's default EXTENDED storage would try
pglz on every proof first and give up."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_topup_request")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ledger_topuprequest ALTER COLUMN proof SET STORAGE EXTERNAL",
            "ALTER TABLE ledger_topuprequest ALTER COLUMN proof SET STORAGE EXTENDED",
        )
    ]
