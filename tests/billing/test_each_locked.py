"""kernel.db.each_locked: the sweepers' one way to take rows one at a time without waiting on each other."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django_tenants.utils import schema_context

from kernel.db import each_locked
from tests.billing.factories import unique


@pytest.fixture
def rows(live_db):
    """Three committed customers of alpha (each_locked needs committed rows another connection sees)."""
    from tenants.customers.models import Customer

    with schema_context("alpha"):
        made = [Customer.objects.create(external_ref=unique("c"), name="before") for _ in range(3)]
    yield Customer, sorted(c.pk for c in made)
    with schema_context("alpha"):
        Customer.objects.filter(pk__in=[c.pk for c in made]).delete()


def test_a_row_another_transaction_holds_is_skipped_not_waited_for(rows):
    model, ids = rows
    held, release = threading.Event(), threading.Event()

    def hold_first():
        with schema_context("alpha"), transaction.atomic():
            model.objects.select_for_update().get(pk=ids[0])
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert held.wait(10)
    try:
        with schema_context("alpha"):
            seen = []
            assert each_locked(model.objects.filter(pk__in=ids), limit=10, handle=lambda row: seen.append(row.pk)) == 0
    finally:
        release.set()
        holder.join(10)
    assert sorted(seen) == ids[1:]


def test_the_body_commits_per_row_and_a_failing_row_rolls_back_alone(rows):
    model, ids = rows
    with schema_context("alpha"):
        def rename(row) -> bool:
            row.name = "after"
            row.save(update_fields=["name"])
            if row.pk == ids[1]:
                raise RuntimeError("boom")
            return True

        with pytest.raises(RuntimeError):
            each_locked(model.objects.filter(pk__in=ids).order_by("pk"), limit=10, handle=rename)
        names = dict(model.objects.filter(pk__in=ids).values_list("pk", "name"))
    assert names == {ids[0]: "after", ids[1]: "before", ids[2]: "before"}


def test_it_counts_the_rows_the_handler_says_it_handled(rows):
    model, ids = rows
    with schema_context("alpha"):
        handled = each_locked(model.objects.filter(pk__in=ids), limit=10, handle=lambda row: row.pk != ids[0])
    assert handled == 2
    assert not connection.in_atomic_block
