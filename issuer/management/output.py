"""JSON output and exit codes shared by the issuer's management commands.

Exit codes: 0 success, 1 internal failure (including 5xx problems such as
``signing_unavailable``), 2 refusal (a problem with the input: the problem JSON
says which), 3 verification ran and the document is not validly stamped.
"""

from __future__ import annotations

import json
import logging

from django.core.management.base import CommandError

from kernel.errors import ApplicationError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_REFUSED = 2
EXIT_NOT_VALID = 3

logger = logging.getLogger("issuer.commands")


class CommandRefusal(ApplicationError):
    """A refusal made by the command itself (bad arguments, unknown channel, unreadable file)."""

    http_status = 400
    title = "The command cannot be carried out"

    def __init__(self, code: str, message: str, *, status: int = 400, extra: dict | None = None):
        super().__init__(message, extra=extra)
        self.code = code
        self.http_status = status


def write_json(command, body: dict) -> None:
    command.stdout.write(json.dumps(body, ensure_ascii=False, default=str))


def fail(command, exc: BaseException) -> CommandError:
    """Print ``exc`` as problem JSON on stdout and return the CommandError to raise (exit 2 or 1)."""
    if isinstance(exc, ApplicationError):
        body = exc.as_problem()
        write_json(command, body)
        # 5xx (e.g. signing_unavailable) is our side failing, not a refusal of the input
        returncode = EXIT_INTERNAL if exc.http_status >= 500 else EXIT_REFUSED
        return CommandError(f"{exc.code}: {exc.message}", returncode=returncode)
    logger.exception("issuer command failed")
    body = {
        "type": "https://errors.e-meterai.example/internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "Something went wrong on our side; the log has the details.",
        "code": "internal_error",
    }
    write_json(command, body)
    return CommandError("internal_error: see the log", returncode=EXIT_INTERNAL)
