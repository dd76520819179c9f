"""Every stamp inserts a serial row, so each index on the registry is write cost on every stamp. The
registry keeps the indexes its reads use (the serial's uniqueness, a channel's serials newest first,
one used serial per job) and no other: no LIKE-pattern index on the serial (compared for equality
only), no index of the channel's own (the channel's newest-first index leads with it)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def indexes(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s ORDER BY indexname", [table]
        )
        return [row[0].split(" USING ", 1)[1] for row in cursor.fetchall()]


def test_the_registry_has_only_the_indexes_its_reads_use():
    found = indexes("issuer_serial")
    assert "btree (serial)" in found  # unique: the verification look-up
    assert "btree (channel_id, created_at DESC)" in found
    assert not [index for index in found if "pattern_ops" in index], found
    assert "btree (channel_id)" not in found, found
    assert len(found) == 5, found  # the id, the serial, the channel's newest first, used per job, the document type
