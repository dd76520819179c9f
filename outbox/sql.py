"""``outbox_enqueue_event``: an event's deliveries written by SQL, installed in every channel schema
(migration 0003), for a caller that records its event inside a statement of its own.

It is PL/pgSQL, not an SQL function: PostgreSQL parses and plans an SQL function's body on every call
it cannot inline (one with ``SET search_path`` is never inlined), which took 0.24 ms a stamp; PL/pgSQL
keeps its plans for the session.

The one caller is ``stamping_recorded`` (``stamping.sql``), the stamped job's recording: the serial,
the unit, the job and its ``stamp.completed`` event in one statement. It writes exactly what
``outbox.webhooks.enqueue_event`` writes - one pending row per active endpoint that wants the event,
the same event id for all - and returns the rows' ids in the order ``enqueue_event`` makes them, so
that the caller schedules their sending once the statement commits
(``outbox.webhooks.deliveries_recorded``).
"""

CREATE_ENQUEUE_EVENT = r"""
CREATE OR REPLACE FUNCTION {schema}.outbox_enqueue_event(p_event_type text, p_event_id text, p_payload jsonb)
RETURNS bigint[] LANGUAGE plpgsql SET search_path = {schema}, public AS $$
DECLARE
    made bigint[];
BEGIN
    WITH inserted AS (
        INSERT INTO edge_webhookdelivery (
            endpoint_id, event_id, event_type, payload, status, attempt_count, next_attempt_at,
            last_response_code, last_error, attempts, created_at, delivered_at, bare
        )
        SELECT id, p_event_id, p_event_type, p_payload, 'pending', 0, now(), NULL, '', '[]'::jsonb, now(), NULL, false
        FROM edge_webhookendpoint
        WHERE active AND (events @> ARRAY[p_event_type::varchar] OR events @> ARRAY['*'::varchar])
        ORDER BY id
        RETURNING id
    )
    SELECT coalesce(array_agg(id ORDER BY id), ARRAY[]::bigint[]) INTO made FROM inserted;
    RETURN made;
END $$;
"""

DROP_ENQUEUE_EVENT = "DROP FUNCTION IF EXISTS {schema}.outbox_enqueue_event"


def create_enqueue_event(schema: str) -> str:
    """``outbox_enqueue_event`` for one (quoted) channel schema, its ``search_path`` pinned to it."""
    return CREATE_ENQUEUE_EVENT.replace("{schema}", schema)
