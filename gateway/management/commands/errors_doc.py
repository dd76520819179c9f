"""Write the error catalogue's tables into docs/errors.md from the error classes (``--check``: only
say whether the file is current, exit 1 if not)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway.http.schema import GENERATED_BEGIN, GENERATED_END, errors_markdown


def errors_doc_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "errors.md"


def render(current: str) -> str:
    """``current`` with its generated block replaced by what the classes say now."""
    start, end = current.index(GENERATED_BEGIN), current.index(GENERATED_END) + len(GENERATED_END)
    return current[:start] + errors_markdown() + current[end:]


class Command(BaseCommand):
    help = "Generate the error tables of docs/errors.md from the error classes."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Exit 1 if docs/errors.md is not current.")

    def handle(self, *args, check: bool = False, **options):
        path = errors_doc_path()
        current = path.read_text()
        wanted = render(current)
        if check:
            if wanted != current:
                raise CommandError("docs/errors.md is stale: run `manage.py errors_doc`.")
            self.stdout.write("docs/errors.md is current")
            return
        path.write_text(wanted)
        self.stdout.write(f"wrote {path}")
