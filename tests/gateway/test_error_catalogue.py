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


# --------------------------------------------------------------------------- the catalogue both ways

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("kernel", "gateway", "faces", "stamping", "outbox", "tenants", "issuer", "billing")
# Functions that answer with a literal ``code=`` (problem pages, the probe listener, a stamp's failure).
_ANSWERING = {"problem_response", "problem_body", "_problem", "_fail"}


def _product_trees():
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text())


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _literal_codes_answered() -> set[str]:
    codes = set()
    for _path, tree in _product_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node) in _ANSWERING:
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        codes.add(keyword.value.value)
                # positional: _problem(status, code, ...)
                if _called_name(node) == "_problem" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    codes.add(node.args[1].value)
    return codes


def _used_names() -> set[str]:
    """Names the product uses (calls, raises, maps from a SQLSTATE ...), outside the catalogue's own
    list of classes in gateway/http/schema.py."""
    names = set()
    for path, tree in _product_trees():
        if path.name == "schema.py" and path.parent.name == "http":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def _documented_codes() -> set[str]:
    text = errors_doc_path().read_text()
    block = text[text.index(schema.GENERATED_BEGIN) : text.index(schema.GENERATED_END)]
    return {line.split("`")[1] for line in block.splitlines() if line.startswith("| `")}


def test_every_code_the_product_answers_is_documented():
    from gateway.http.problems import _DRF_CODES

    produced = _literal_codes_answered() | {code for code, _title in _DRF_CODES.values()} | {"request_refused"}
    produced |= {cls.code for cls in schema.error_classes()}
    assert produced - _documented_codes() == set()


def test_every_documented_code_can_be_produced():
    """A documented code is raised by an error class the product uses, answered as a literal by a page,
    probe or handler, or mapped from one of DRF's errors."""
    from gateway.http.problems import _DRF_CODES

    used = _used_names()
    by_class = {cls.code for cls in schema.error_classes() if cls.__name__ in used}
    answered = _literal_codes_answered() | {code for code, _title in _DRF_CODES.values()}
    # Edge codes raised by their class in the HTTP layer: invalid_api_key, rate_limited, the idempotency
    # ones and invalid_cursor are classes (counted above); these few are answered by Django itself.
    by_django = {"request_refused"}
    unreachable = _documented_codes() - by_class - answered - by_django
    assert unreachable == set()
