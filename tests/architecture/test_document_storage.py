"""Documents are stored out of line without compression.

A PDF's content (and an image's) is compressed already. With PostgreSQL's default EXTENDED storage every
insert of one first runs pglz over it and gives up: about 10 ms of the server's CPU for the ~800 KB
scan of ``tests/fixtures/pdfs``, on every upload. Each ``bytea`` column is EXTERNAL, in the public
schema and in a channel's, unless it is listed below as small or compressible."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

# Columns that may keep EXTENDED storage: they hold no document.
COMPRESSIBLE = {
    ("stamping_jobdocument", "sealed_password"),  # a few dozen bytes
    ("edge_idempotencyrecord", "response_body"),  # a JSON answer, kept for replays
}


def _bytea_columns(schema: str) -> dict[tuple[str, str], str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, a.attname, a.attstorage
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r' AND a.atttypid = 'bytea'::regtype AND a.attnum > 0
              AND NOT a.attisdropped
            """,
            [schema],
        )
        return {(table, column): storage for table, column, storage in cursor.fetchall()}


@pytest.mark.parametrize("schema", ["public", "alpha"])
def test_every_document_column_is_stored_without_compression(channels, schema):
    columns = _bytea_columns(schema)
    documents = {column: storage for column, storage in columns.items() if column not in COMPRESSIBLE}
    assert documents, f"no document column found in {schema}"
    assert {column: storage for column, storage in documents.items() if storage != "e"} == {}


def test_the_document_columns_are_the_ones_expected(channels):
    """The list of columns checked above is not empty by accident: the known document columns are in it."""
    assert ("issuer_stampeddocument", "pdf") in _bytea_columns("public")
    assert ("ledger_topuprequest", "proof") in _bytea_columns("public")
    assert {("stamping_jobdocument", "original"), ("compat_compatupload", "data")} <= set(_bytea_columns("alpha"))
