"""Store a top-up's proof of transfer (a PDF or an image: compressed already) out of line without
compression, as the uploads are (``stamping.0005``)."""

from django.db import migrations

from kernel.migration_ops import StoreWithoutCompression


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_topup_request")]

    operations = [StoreWithoutCompression("ledger_topuprequest", "proof")]
