"""What every benchmark does first: Django set up on a database whose schemas are migrated."""

from __future__ import annotations


def setup_migrated() -> None:
    """``django.setup()`` and ``migrate_schemas`` (a no-op when up to date), so a benchmark runs on a fresh clone."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--shared", verbosity=0)
    call_command("migrate_schemas", verbosity=0)
