"""The error catalogue is written once, on the error classes: docs/errors.md and the OpenAPI documents
are generated from them, so nothing can say one thing in one place and another elsewhere."""

from __future__ import annotations

from gateway.http import schema
from gateway.management.commands.errors_doc import errors_doc_path, render
from kernel.errors import ApplicationError


def test_docs_errors_md_is_generated_from_the_classes():
    current = errors_doc_path().read_text()
    assert render(current) == current, "docs/errors.md is stale: run `manage.py errors_doc`"


def test_every_error_with_a_code_of_its_own_says_what_to_do():
    schema.error_classes()  # imports every module that defines errors
    pending, missing = list(ApplicationError.__subclasses__()), []
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        is_base = bool(cls.__subclasses__())  # DocumentError, PlacementError, LedgerError: never raised as such
        if "code" in cls.__dict__ and not is_base and not cls.what_to_do and not cls.__module__.startswith("tests."):
            missing.append(f"{cls.__module__}.{cls.__name__}")
    assert missing == []


def test_the_api_catalogue_reads_what_to_do_from_the_class():
    from stamping.errors import Overloaded

    assert schema.catalogue()["overloaded"] == (503, Overloaded.what_to_do)
    assert f"| `overloaded` | 503 | {Overloaded.what_to_do} |" in errors_doc_path().read_text()
