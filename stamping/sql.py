"""The stamp intake as one PL/pgSQL function, installed in every channel schema (migration 0003).

``stamping_intake`` does in ONE round trip, and one transaction, what the request path used to do in
eight statements: check the customer, hold one unit of its wallet through the ledger (``ledger_hold_unit``, the one
definition of a hold, which ``billing.quota.hold_quota`` calls too), and write
the job and its document. Anything it refuses raises, and then nothing of it is written.

SQLSTATEs it raises besides the ledger's (``billing.ledger.sql``):

    S0001    no such customer in this channel

A wallet account that does not exist yet is a wallet with no units: the ledger's ``L0002``
(insufficient balance). The intake never creates accounts, so unknown customer ids cannot make rows.

Each channel schema has its own copy, with ``search_path`` pinned to that schema and public, and the
request path calls it schema-qualified through a prepared statement (``stamping.services``):
one round trip, parsed and planned once per connection.
"""

def create_intake(schema: str) -> str:
    """``stamping_intake`` for one channel schema, its ``search_path`` pinned to that schema (so the call,
    schema-qualified, needs no ``SET search_path`` round trip first)."""
    return CREATE_INTAKE.replace("{schema}", schema)


CREATE_INTAKE = r"""
CREATE OR REPLACE FUNCTION {schema}.stamping_intake(
    p_job_id text, p_customer_id bigint, p_hold_id text, p_wallet_code text, p_used_account bigint,
    p_timeout_seconds integer,
    p_batch_id text, p_file_name text, p_sha256 text, p_pages integer, p_page integer,
    p_llx double precision, p_lly double precision, p_urx double precision, p_ury double precision,
    p_profile text, p_document_type text, p_document_number text, p_document_date date,
    p_reason text, p_location text, p_original bytea, p_sealed_password bytea
) RETURNS timestamptz LANGUAGE plpgsql SET search_path = {schema}, public AS $$
DECLARE
    wallet bigint;
    created timestamptz := clock_timestamp();
BEGIN
    -- Checked here, not left to the job's foreign key: that one is deferred to commit, which inside a
    -- caller's transaction (a batch) is too late to answer "no such customer".
    PERFORM 1 FROM portal_customer WHERE id = p_customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no customer %', p_customer_id USING ERRCODE = 'S0001';
    END IF;
    SELECT id INTO wallet FROM ledger_account WHERE code = p_wallet_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % has no wallet', p_customer_id USING ERRCODE = 'L0002';
    END IF;
    PERFORM ledger_hold_unit(p_hold_id, wallet, p_used_account, p_timeout_seconds);
    INSERT INTO stamping_stampjob (
        id, customer_id, batch_id, status, unit, hold_id, file_name, sha256_in, pages, page,
        llx, lly, urx, ury, profile, document_type, document_number, document_date, reason, location,
        serial, sha256_out, error_code, error_detail, attempts, created_at, started_at, finished_at,
        enqueued_at, available_at, claimed_at
    ) VALUES (
        p_job_id, p_customer_id, p_batch_id, 'queued', 'held', p_hold_id, p_file_name, p_sha256, p_pages, p_page,
        p_llx, p_lly, p_urx, p_ury, p_profile, p_document_type, p_document_number, p_document_date, p_reason,
        p_location, '', '', '', '', 0, created, NULL, NULL, created, created, NULL
    );
    INSERT INTO stamping_jobdocument (job_id, original, sealed_password)
    VALUES (p_job_id, p_original, p_sealed_password);
    RETURN created;
END $$;
"""

DROP_INTAKE = "DROP FUNCTION IF EXISTS {schema}.stamping_intake"

# Explicit casts: the call is prepared with server-side binding, where a Python int may arrive as any
# integer type and a None as unknown.
CALL_INTAKE = (
    "SELECT {schema}.stamping_intake(%s::text, %s::bigint, %s::text, %s::text, %s::bigint, %s::integer, %s::text,"
    " %s::text, %s::text, %s::integer, %s::integer, %s::float8, %s::float8, %s::float8, %s::float8, %s::text,"
    " %s::text, %s::text, %s::date, %s::text, %s::text, %s::bytea, %s::bytea)"
)
