"""``kernel.db.savepoint_needed``: a statement that may be refused runs in a savepoint wherever the
transaction's owner may go on after the refusal, and nowhere else. (``live_db``: outside any
transaction of the test's own; these tests write nothing.)"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from kernel.db import atomic_rolled_back_whole, savepoint_needed


def test_only_a_transaction_that_may_go_on_after_a_refusal_needs_a_savepoint(live_db):
    assert not connection.in_atomic_block and not savepoint_needed()  # the statement is its own
    with transaction.atomic():
        assert savepoint_needed()  # its owner may catch the refusal and go on
    with atomic_rolled_back_whole():
        assert not savepoint_needed()  # rolled back whole on any refusal
        with transaction.atomic():
            assert savepoint_needed()  # a block of its own inside: that one's owner may go on
        assert not savepoint_needed()
    with transaction.atomic():
        assert savepoint_needed()  # the declaration ended with its block


def test_the_declaration_is_the_threads_own(live_db):
    """Another request's thread, in a plain transaction as deep as ours, still needs its savepoints."""
    seen = []

    def other_request() -> None:
        try:
            with transaction.atomic():
                seen.append(savepoint_needed())
        finally:
            connection.close()

    with atomic_rolled_back_whole():
        other = threading.Thread(target=other_request)
        other.start()
        other.join()
        assert not savepoint_needed()
    assert seen == [True]


def test_it_ends_with_its_block_when_the_block_raises(live_db):
    with pytest.raises(ZeroDivisionError), atomic_rolled_back_whole():
        1 / 0  # noqa: B018
    with transaction.atomic():
        assert savepoint_needed()
