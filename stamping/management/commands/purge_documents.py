"""``manage.py purge_documents [--dry-run]``: delete the stamped documents and uploads past their
retention now (the hourly ``stamping.retention_sweep`` task does the same), or only count them."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from stamping import retention


class Command(BaseCommand):
    help = (
        "Delete stamped documents and uploads past their retention "
        "(STAMPED_DOCUMENT_RETENTION_DAYS, UPLOAD_RETENTION_DAYS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what is due.")

    def handle(self, *args, dry_run: bool = False, **options):
        result = retention.sweep(dry_run=dry_run)
        verb = "due" if dry_run else "deleted"
        self.stdout.write(
            f"stamped documents {verb}: {result['stamped_documents']}; uploads {verb}: {result['uploads']}"
        )
