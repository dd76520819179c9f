"""``manage.py i18n_extract``: gather every translatable message into locale/<lang>/LC_MESSAGES/django.po.

Django's ``makemessages`` needs GNU gettext; this reads the templates with Django's own template
lexer (``templatize``), the Python code with the tokenizer, and the error catalogue from the error
classes, then merges into the .po files keeping the translations already there. ``--check`` changes
nothing and fails when a .po file is not current or (for Indonesian) leaves a message untranslated.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway import i18n


class Command(BaseCommand):
    help = "Extract translatable messages into locale/<lang>/LC_MESSAGES/django.po (no GNU gettext needed)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail if a .po is stale or id is incomplete")

    def handle(self, *args, check: bool = False, **options):
        catalogue = i18n.extract()
        problems = []
        for language, _name in settings.LANGUAGES:
            if language == "en":
                continue  # the msgids are English
            path = i18n.po_path(language)
            before = path.read_text(encoding="utf-8") if path.exists() else ""
            if check:
                missing = i18n.untranslated(language, catalogue.messages)
                if missing:
                    problems.append(f"{language}: {len(missing)} untranslated, e.g. {missing[0].msgid!r}")
                continue
            total, untranslated = i18n.merge(language, catalogue)
            changed = path.read_text(encoding="utf-8") != before
            self.stdout.write(
                f"{path.relative_to(settings.BASE_DIR)}: {total} messages, {untranslated} untranslated"
                + (" (updated)" if changed else "")
            )
        if problems:
            raise CommandError("; ".join(problems) + ". Run `manage.py i18n_extract` and translate.")
