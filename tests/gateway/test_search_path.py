"""The database backend (``kernel.pgbackend``) sends ``SET search_path`` only when the session's path
changes: not once per request for the same channel, and again after a rollback undid it."""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context


def _in(schema: str) -> tuple[list[str], str]:
    """Query in ``schema`` as a request would (the tenant set, then public again): the SETs sent, and
    the search path the session then really had."""
    with CaptureQueriesContext(connection) as captured, schema_context(schema):
        with connection.cursor() as cursor:
            cursor.execute("SHOW search_path")
            path = cursor.fetchone()[0]
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SET search_path")], path


def test_the_path_is_set_when_it_changes_and_only_then(live_db):
    connection.close()  # a new session
    sets, path = _in("alpha")
    assert len(sets) == 1 and path == "alpha, public"
    assert _in("alpha") == ([], "alpha, public")  # the next request: public was set between, unused
    sets, path = _in("beta")
    assert len(sets) == 1 and path == "beta, public"
    sets, path = _in("alpha")
    assert len(sets) == 1 and path == "alpha, public"


def test_a_path_a_rollback_undid_is_set_again(live_db):
    connection.close()
    assert _in("alpha")[1] == "alpha, public"
    with transaction.atomic():
        assert _in("beta")[1] == "beta, public"  # set inside the transaction ...
        transaction.set_rollback(True)  # ... and undone with it: the session is back on alpha
    sets, path = _in("beta")
    assert len(sets) == 1 and path == "beta, public"
    with transaction.atomic():
        with transaction.atomic():
            _in("alpha")
            transaction.set_rollback(True)  # to the savepoint: back on beta
        sets, path = _in("alpha")
        assert len(sets) == 1 and path == "alpha, public"


def test_a_new_session_gets_its_path(live_db):
    _in("alpha")
    connection.close()
    sets, path = _in("alpha")
    assert len(sets) == 1 and path == "alpha, public"
