"""The stamp intake called straight through libpq writes what psycopg's cursor writes, refuses what it
refuses, and survives a deallocated statement and a lost connection.

These run on committed data (``live_db``): the libpq path is taken only on a connection in autocommit,
which a test inside pytest-django's transaction never is."""

from __future__ import annotations

import datetime
import time

import psycopg
import pytest
from django.db import DatabaseError, connection, connections, transaction
from django_tenants.utils import schema_context

from billing import quota
from billing.ledger import services as ledger
from stamping import intake, services
from stamping.models import JobDocument, StampJob, new_job_id
from tests.billing.factories import funded_wallet, unique
from tests.fixtures.pdfs.factory import text_pdf

PDF = b"%PDF-1.7\n\x00\x01\xff binary \x00 body\n%%EOF\n"


@pytest.fixture
def alpha(live_db):
    from tenants.models import Channel

    return Channel.objects.get(code="alpha")


@pytest.fixture
def customer_id(alpha, monkeypatch):
    from tenants.customers.models import Customer

    # These jobs are committed in alpha, and the e2e tests' session worker may still be draining its
    # lane: no wake for them, so no worker is sent for them.
    monkeypatch.setattr(services, "queued", lambda **_: None)
    customer_id = funded_wallet(channel_id=alpha.pk, units=6)
    with schema_context("alpha"):
        Customer.objects.create(id=customer_id, external_ref=unique("c"), name="Intake Caller")
    yield customer_id
    # Jobs left queued would sit in alpha's lane ahead of later tests' jobs (and one a drainer already
    # running took would count as in flight): let any taken one finish, then end the rest, their held
    # units going back, as a worker refusing them would.
    connection.close_if_unusable_or_obsolete()
    with schema_context("alpha"):
        mine = StampJob.objects.filter(customer_id=customer_id)
        deadline = time.monotonic() + 60
        while mine.filter(status="processing").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for job in mine.filter(status="queued"):
            services._fail(job, code="test_cleanup", detail="left by test_intake_call")


def params(alpha, customer_id, **changes) -> list:
    job_id = new_job_id()
    values = {
        "job_id": job_id, "customer_id": customer_id, "hold_id": f"stamp:{alpha.pk}:{job_id}",
        "wallet": ledger.wallet_code(channel_id=alpha.pk, customer_id=customer_id),
        "used": quota.used_account(channel_id=alpha.pk, customer_id=customer_id), "timeout": 1800,
        "batch": None, "file_name": "Surat – perjanjian ✓.pdf", "sha256": "ab" * 32, "pages": 3, "page": 2,
        "llx": 0.1, "lly": -12.5, "urx": 595.2760000000001, "ury": 1e-300, "profile": "default",
        "document_type": "", "document_number": "SP/2026/Ω", "document_date": datetime.date(1999, 12, 31),
        "reason": "Kontrak kerja 💼", "location": "", "original": PDF, "sealed": b"\x00sealed\x00",
        "facts": "{\"v\":1} ✓:signature",
    } | changes  # fmt: skip
    return list(values.values())


def stored(job_id: str) -> tuple[dict, bytes, bytes | None]:
    with schema_context("alpha"):
        job = StampJob.objects.values().get(pk=job_id)
        document = JobDocument.objects.get(pk=job_id)
    job["document_facts"] = document.facts  # (not a job column: compared with the rest)
    return job, bytes(document.original), None if document.sealed_password is None else bytes(document.sealed_password)


def prepared_names() -> set[bytes]:
    return set(connection.connection.__dict__.get(intake._PREPARED_ATTR, ()))


def test_libpq_and_cursor_write_the_same_rows(alpha, customer_id):
    connection.ensure_connection()
    assert connection.connection.autocommit
    by_libpq = params(alpha, customer_id)
    created = intake.call_intake("alpha", by_libpq)
    assert b"gateway_intake_alpha" in prepared_names()  # the libpq path ran
    by_cursor = params(alpha, customer_id)
    with transaction.atomic():  # inside a transaction: psycopg's cursor
        cursor_created = intake.call_intake("alpha", by_cursor)

    (job, original, sealed), (twin, twin_original, twin_sealed) = stored(by_libpq[0]), stored(by_cursor[0])
    assert job["created_at"] == created and twin["created_at"] == cursor_created
    assert created.tzinfo is not None and created.utcoffset() == datetime.timedelta(0)
    different = {"id", "hold_id", "created_at", "enqueued_at", "available_at"}
    assert {k: v for k, v in job.items() if k not in different} == {
        k: v for k, v in twin.items() if k not in different
    }
    assert (job["llx"], job["lly"], job["urx"], job["ury"]) == (0.1, -12.5, 595.2760000000001, 1e-300)
    assert (job["file_name"], job["reason"], job["document_number"]) == (
        "Surat – perjanjian ✓.pdf", "Kontrak kerja 💼", "SP/2026/Ω"
    )  # fmt: skip
    assert job["document_date"] == datetime.date(1999, 12, 31) and job["batch_id"] is None
    assert job["document_facts"] == '{"v":1} ✓:signature'
    assert original == twin_original == PDF and sealed == twin_sealed == b"\x00sealed\x00"


def test_psycopgs_path_prepares_its_statement_once_per_connection(alpha, customer_id):
    """Inside a transaction the intake takes psycopg's cursor with ``prepare=True``: PostgreSQL must
    then hold it prepared, and a second call must reuse it. (With Django's ``prepare_threshold`` of
    None, a plain psycopg cursor prepared nothing, whatever it asked.)"""

    def intakes_prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(  # psycopg's names, not the libpq path's gateway_intake_<schema>
                "SELECT statement FROM pg_prepared_statements WHERE name LIKE %s AND statement LIKE %s",
                ["\\_pg3\\_%", '%"alpha".stamping_intake(%'],
            )
            return [row[0] for row in cursor.fetchall()]

    with transaction.atomic():
        intake.call_intake("alpha", params(alpha, customer_id))
        first = intakes_prepared()
        second = params(alpha, customer_id)
        intake.call_intake("alpha", second)
        assert intakes_prepared() == first
    assert len(first) == 1 and "$1" in first[0]  # bound on the server
    assert stored(second[0])[0]["id"] == second[0]


def test_nulls_and_empty_values(alpha, customer_id):
    values = params(alpha, customer_id, document_date=None, sealed=None, file_name="", reason="")
    intake.call_intake("alpha", values)
    job, _, sealed = stored(values[0])
    assert (job["document_date"], sealed, job["file_name"], job["reason"]) == (None, None, "", "")


def test_a_nul_in_text_is_refused_not_cut_short_and_nothing_is_written(alpha, customer_id):
    """libpq sends text-format values as C strings; the intake's are binary, so the server refuses it."""
    values = params(alpha, customer_id, file_name="a\x00b.pdf")
    with pytest.raises(DatabaseError):
        intake.call_intake("alpha", values)
    with schema_context("alpha"):
        assert not StampJob.objects.filter(pk=values[0]).exists()
    assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 0


def test_refusals_carry_the_intakes_sqlstate(alpha, customer_id):
    with pytest.raises(DatabaseError) as no_customer:
        intake.call_intake("alpha", params(alpha, 10**15 + 7))
    assert no_customer.value.__cause__.sqlstate == "S0001"
    with schema_context("alpha"):
        for _ in range(6):
            services.request_stamp(
                channel=alpha, customer_id=customer_id,
                request=services.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0)),
            )  # fmt: skip
    with pytest.raises(DatabaseError) as empty:
        intake.call_intake("alpha", params(alpha, customer_id))
    assert empty.value.__cause__.sqlstate == "L0002"


def test_a_value_that_does_not_fit_its_binary_type_takes_psycopgs_path(alpha, customer_id):
    values = params(alpha, customer_id, pages=2**40)  # not an int4
    assert intake._packed(values) is None
    with pytest.raises(DatabaseError):  # the server refuses it, as it always did
        intake.call_intake("alpha", values)


def test_a_deallocated_statement_is_prepared_again(alpha, customer_id):
    intake.call_intake("alpha", params(alpha, customer_id))
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    values = params(alpha, customer_id)
    intake.call_intake("alpha", values)
    assert stored(values[0])[0]["id"] == values[0]


def test_a_lost_connection_fails_the_call_and_the_next_request_gets_a_new_one(alpha, customer_id):
    intake.call_intake("alpha", params(alpha, customer_id))
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**_conninfo(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(DatabaseError):
        intake.call_intake("alpha", params(alpha, customer_id))
    assert connection.errors_occurred
    connection.close_if_unusable_or_obsolete()  # what Django does at the end of the request
    values = params(alpha, customer_id)
    intake.call_intake("alpha", values)
    assert connection.connection.info.backend_pid != pid
    assert stored(values[0])[0]["id"] == values[0]


def _conninfo() -> dict:
    params = connections["default"].get_connection_params()
    return {k: v for k, v in params.items() if k in {"dbname", "user", "password", "host", "port"}}


def test_a_stale_cached_account_is_looked_up_again_or_answered_with_a_retry(alpha, customer_id):
    """The used-units account id comes from a process cache; when it is gone (a restored database) the
    intake refuses it (L0007). Outside a transaction, and inside one with a savepoint, the call is
    made again with the id looked up afresh. Directly inside a transaction rolled back whole on a
    refusal (the API's edge: no savepoint) it cannot be: the answer is 503 ``service_unavailable``
    with ``Retry-After``, and nothing is written."""
    from kernel.db import atomic_rolled_back_whole
    from kernel.errors import ServiceUnavailable

    real = quota.used_account(channel_id=alpha.pk, customer_id=customer_id)
    (code,) = [code for code, value in ledger._account_ids.items() if value == real]

    def stale() -> None:
        ledger._account_ids[code] = 10**15 + 3  # no such account

    def stamp() -> None:
        request = services.StampRequest(data=text_pdf(), page=1, box=(400.0, 50.0, 500.0, 150.0))
        services.request_stamp(channel=alpha, customer_id=customer_id, request=request)

    def jobs() -> int:
        return StampJob.objects.filter(customer_id=customer_id).count()

    with schema_context("alpha"):
        stale()
        stamp()
        assert jobs() == 1 and ledger._account_ids[code] == real

        stale()
        with transaction.atomic():
            stamp()
        assert jobs() == 2 and ledger._account_ids[code] == real

        stale()
        with pytest.raises(ServiceUnavailable) as refused, atomic_rolled_back_whole():
            stamp()
        assert refused.value.headers == {"Retry-After": "1"}
        assert jobs() == 2 and code not in ledger._account_ids  # forgotten: the retry looks it up
        assert quota.wallet_balance(channel_id=alpha.pk, customer_id=customer_id)["held"] == 2


def test_the_earlier_releases_call_without_facts_still_writes_the_job(alpha, customer_id):
    """After ``stamping.0009`` a web process of the release before it, not yet restarted, still calls
    ``stamping_intake`` with 23 arguments: the function takes the facts as a last argument with a
    default, so that call finds it, and the job is written with no facts (the worker inspects it)."""
    from stamping.sql import CALL_INTAKE

    earlier = CALL_INTAKE.replace(", %s::text)", ")").replace("{schema}", '"alpha"')
    assert earlier.count("%s") == 23
    values = params(alpha, customer_id)[:-1]
    with connection.cursor() as cursor:
        cursor.execute(earlier, values)
    job, original, _sealed = stored(values[0])
    assert (job["status"], job["unit"], job["document_facts"], original) == ("queued", "held", None, PDF)
