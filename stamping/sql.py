"""The stamp intake and the stamped job's recording as PL/pgSQL functions, installed in every channel
schema (migrations 0003 and 0008).

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

``stamping_recorded`` (migration 0008) is the channel's part of a stamp's recording: the issuer runs
it in the very statement that inserts the used serial and its stamped document
(``issuer.services.RecordingPart``), so the serial, the unit, the job and its event commit together
in ONE round trip and one transaction, where they took six statements (BEGIN, the serial, the ledger,
the job, the webhook look-up, COMMIT). It commits the job's hold through the ledger
(``ledger_resolve_pending``, as ``billing.quota.commit_hold`` does), marks the job stamped, drops a
sealed password, and writes the ``stamp.completed`` deliveries (``outbox_enqueue_event``); it
returns their ids. A refusal (the hold timed out: the ledger's SQLSTATE) fails the whole statement,
serial included.
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
    p_reason text, p_location text, p_original bytea, p_sealed_password bytea, p_facts text DEFAULT NULL
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
    INSERT INTO stamping_jobdocument (job_id, original, sealed_password, facts)
    VALUES (p_job_id, p_original, p_sealed_password, p_facts);
    RETURN created;
END $$;
"""

DROP_INTAKE = "DROP FUNCTION IF EXISTS {schema}.stamping_intake"

# The intake's arguments before ``p_facts`` (stamping 0009). The function now takes one more, with a
# default, so a call of the earlier code (a web process not yet restarted after the migration) still
# finds it and writes no facts.
INTAKE_ARGS_BEFORE_FACTS = (
    "text, bigint, text, text, bigint, integer, text, text, text, integer, integer, double precision,"
    " double precision, double precision, double precision, text, text, text, date, text, text, bytea, bytea"
)

# Explicit casts: the call is prepared with server-side binding, where a Python int may arrive as any
# integer type and a None as unknown.
CALL_INTAKE = (
    "SELECT {schema}.stamping_intake(%s::text, %s::bigint, %s::text, %s::text, %s::bigint, %s::integer, %s::text,"
    " %s::text, %s::text, %s::integer, %s::integer, %s::float8, %s::float8, %s::float8, %s::float8, %s::text,"
    " %s::text, %s::text, %s::date, %s::text, %s::text, %s::bytea, %s::bytea, %s::text)"
)


# --- The stamped job's recording ------------------------------------------------------------------

CREATE_RECORDED = r"""
CREATE OR REPLACE FUNCTION {schema}.stamping_recorded(
    p_job_id text, p_commit_id text, p_hold_id text, p_commit_kind text, p_serial text, p_sha256_out text,
    p_finished_at timestamptz, p_clear_password boolean, p_event_type text, p_event_id text, p_payload jsonb
) RETURNS bigint[] LANGUAGE plpgsql SET search_path = {schema}, public AS $$
BEGIN
    PERFORM ledger_resolve_pending(p_commit_id, p_hold_id, true, false, p_commit_kind, '{}'::jsonb);
    UPDATE stamping_stampjob
    SET status = 'stamped', unit = 'committed', serial = p_serial, sha256_out = p_sha256_out,
        finished_at = p_finished_at, error_code = '', error_detail = ''
    WHERE id = p_job_id;
    IF p_clear_password THEN
        UPDATE stamping_jobdocument SET sealed_password = NULL WHERE job_id = p_job_id;
    END IF;
    RETURN outbox_enqueue_event(p_event_type, p_event_id, p_payload);
END $$;
"""

DROP_RECORDED = "DROP FUNCTION IF EXISTS {schema}.stamping_recorded"

# The expression the issuer's recording statement evaluates (explicit casts: server-side binding).
CALL_RECORDED = (
    "{schema}.stamping_recorded(%s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::timestamptz,"
    " %s::boolean, %s::text, %s::text, %s::jsonb)"
)


def create_recorded(schema: str) -> str:
    """``stamping_recorded`` for one (quoted) channel schema, its ``search_path`` pinned to it."""
    return CREATE_RECORDED.replace("{schema}", schema)
