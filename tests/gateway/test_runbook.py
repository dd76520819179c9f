"""docs/runbook.md: every ``manage.py`` command it names exists, with every ``--option`` it gives it;
every Celery task it calls is registered; its internal links lead to its own sections."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from django.core.management import get_commands, load_command_class

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def command_lines() -> list[str]:
    text = RUNBOOK.read_text()
    return [m.group(0) for m in re.finditer(r"manage\.py [^`\n]+", text)]


def test_every_manage_py_command_of_the_runbook_exists_with_its_options():
    commands = get_commands()
    lines = command_lines()
    assert len(lines) >= 15
    for line in lines:
        words = shlex.split(line.replace("$(date +%F)", "DATE"), posix=True)
        name = words[1]
        assert name in commands, f"runbook names `manage.py {name}`, which does not exist"
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        known = {option for action in parser._actions for option in action.option_strings}
        for word in words[2:]:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"`manage.py {name}` has no option {word}"


def test_every_celery_task_the_runbook_calls_is_registered():
    from gateway.celery import app

    app.loader.import_default_modules()
    called = re.findall(r"celery -A gateway call ([\w.]+)", RUNBOOK.read_text())
    assert called
    for task in called:
        assert task in app.tasks, f"runbook calls {task}, which no worker knows"


def test_the_runbooks_links_lead_to_its_sections():
    text = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    }
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, link
