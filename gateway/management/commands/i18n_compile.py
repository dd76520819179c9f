"""``manage.py i18n_compile``: compile locale/*/LC_MESSAGES/django.po to .mo with polib (no GNU gettext).

Run at install (``make venv``) and by the test setup; the .mo files are build output, never committed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from gateway import i18n


class Command(BaseCommand):
    help = "Compile the .po message catalogues to .mo (polib; GNU gettext is not needed)."

    def handle(self, *args, **options):
        for path in i18n.compile_all():
            self.stdout.write(f"compiled {path.relative_to(settings.BASE_DIR)}")
