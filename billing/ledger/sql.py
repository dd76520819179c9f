"""The ledger's PL/pgSQL functions (installed by migration 0002).

Each function is one statement from the client, so each ledger operation is one round trip. A
failure raises with a ledger SQLSTATE (class ``L0``) and undoes everything the call did:

=======  ===============================================================
L0001    the transfer id exists with different parameters
L0002    the debit account does not have enough available units
L0003    no such pending transfer
L0004    the pending transfer was already posted
L0005    the pending transfer was already voided or expired
L0006    the pending transfer has timed out (post refused; the sweeper voids it)
L0007    no such account
=======  ===============================================================

Open pending transfers (holds, reservations) are the rows of ``ledger_pending``; resolving one deletes
its row, which is what makes a post or void happen at most once.

Accounts are always updated in ascending id order, so two transfers over the same pair of
accounts cannot deadlock. ``no_overdraft`` is checked in the conditional UPDATE and again by the
table's CHECK constraint, so no interleaving of concurrent calls can overdraw an account.
"""

# Version 1 (migration 0002): kept verbatim so that old migrations replay exactly.
CREATE_FUNCTIONS_V1 = r"""
CREATE OR REPLACE FUNCTION ledger_apply(
    p_account bigint, p_debit boolean, p_pending_delta bigint, p_posted_delta bigint, p_check boolean
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_debit THEN
        UPDATE ledger_account
           SET debits_pending = debits_pending + p_pending_delta,
               debits_posted = debits_posted + p_posted_delta
         WHERE id = p_account
           AND (NOT p_check OR NOT no_overdraft
                OR debits_posted + debits_pending + p_pending_delta + p_posted_delta <= credits_posted);
    ELSE
        UPDATE ledger_account
           SET credits_pending = credits_pending + p_pending_delta,
               credits_posted = credits_posted + p_posted_delta
         WHERE id = p_account;
    END IF;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM ledger_account WHERE id = p_account) THEN
            RAISE EXCEPTION 'insufficient balance on account %', p_account USING ERRCODE = 'L0002';
        END IF;
        RAISE EXCEPTION 'no account %', p_account USING ERRCODE = 'L0007';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_id text, p_debit bigint, p_credit bigint, p_amount bigint, p_kind text,
    p_pending boolean, p_timeout_seconds integer, p_data jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    existing ledger_transfer%ROWTYPE;
    inserted text;
    p_state text := CASE WHEN p_pending THEN 'pending' ELSE 'posted' END;
BEGIN
    -- The insert comes first: a concurrent duplicate waits on the primary key, then sees it.
    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state,
                                 timeout_at, data, created_at)
    VALUES (p_id, p_debit, p_credit, p_amount, p_kind, p_state,
            CASE WHEN p_pending AND p_timeout_seconds IS NOT NULL
                 THEN now() + make_interval(secs => p_timeout_seconds) END,
            coalesce(p_data, '{}'::jsonb), now())
    ON CONFLICT (id) DO NOTHING
    RETURNING id INTO inserted;

    IF inserted IS NULL THEN
        SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
        IF existing.debit_account_id = p_debit AND existing.credit_account_id = p_credit
           AND existing.amount = p_amount AND existing.kind = p_kind
           AND (existing.state = 'posted') = (NOT p_pending) THEN
            RETURN 'exists';
        END IF;
        RAISE EXCEPTION 'transfer % exists with different parameters', p_id USING ERRCODE = 'L0001';
    END IF;

    IF p_debit < p_credit THEN
        PERFORM ledger_apply(p_debit, true, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, true);
        PERFORM ledger_apply(p_credit, false, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, false);
    ELSE
        PERFORM ledger_apply(p_credit, false, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, false);
        PERFORM ledger_apply(p_debit, true, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, true);
    END IF;
    RETURN 'created';
END $$;

-- Post (p_post = true) or void a pending transfer. p_ignore_timeout lets the sweeper void an
-- expired hold, and lets nobody post one.
CREATE OR REPLACE FUNCTION ledger_resolve_pending(
    p_id text, p_pending_id text, p_post boolean, p_ignore_timeout boolean, p_kind text, p_data jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    pend ledger_transfer%ROWTYPE;
    existing ledger_transfer%ROWTYPE;
BEGIN
    SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
    IF FOUND THEN
        IF existing.pending_id = p_pending_id
           AND existing.state = (CASE WHEN p_post THEN 'posted' ELSE 'voided' END) THEN
            RETURN 'exists';
        END IF;
        RAISE EXCEPTION 'transfer % exists with different parameters', p_id USING ERRCODE = 'L0001';
    END IF;

    UPDATE ledger_transfer
       SET state = CASE WHEN p_post THEN 'pending_posted' ELSE 'pending_voided' END
     WHERE id = p_pending_id AND state = 'pending'
       AND (NOT p_post OR timeout_at IS NULL OR timeout_at > now())
    RETURNING * INTO pend;

    IF NOT FOUND THEN
        -- A concurrent call with the same id may have resolved it while we waited for the lock.
        SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
        IF FOUND AND existing.pending_id = p_pending_id
           AND existing.state = (CASE WHEN p_post THEN 'posted' ELSE 'voided' END) THEN
            RETURN 'exists';
        END IF;
        SELECT * INTO pend FROM ledger_transfer WHERE id = p_pending_id;
        IF NOT FOUND OR pend.state NOT IN ('pending', 'pending_posted', 'pending_voided') THEN
            RAISE EXCEPTION 'no pending transfer %', p_pending_id USING ERRCODE = 'L0003';
        ELSIF pend.state = 'pending_posted' THEN
            RAISE EXCEPTION 'pending transfer % already posted', p_pending_id USING ERRCODE = 'L0004';
        ELSIF pend.state = 'pending_voided' THEN
            RAISE EXCEPTION 'pending transfer % already voided', p_pending_id USING ERRCODE = 'L0005';
        END IF;
        RAISE EXCEPTION 'pending transfer % timed out', p_pending_id USING ERRCODE = 'L0006';
    END IF;

    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state,
                                 pending_id, data, created_at)
    VALUES (p_id, pend.debit_account_id, pend.credit_account_id, pend.amount, p_kind,
            CASE WHEN p_post THEN 'posted' ELSE 'voided' END, p_pending_id, coalesce(p_data, '{}'::jsonb), now());

    IF pend.debit_account_id < pend.credit_account_id THEN
        PERFORM ledger_apply(pend.debit_account_id, true, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
        PERFORM ledger_apply(pend.credit_account_id, false, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
    ELSE
        PERFORM ledger_apply(pend.credit_account_id, false, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
        PERFORM ledger_apply(pend.debit_account_id, true, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
    END IF;
    RETURN CASE WHEN p_post THEN 'posted' ELSE 'voided' END;
END $$;
"""

CREATE_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION ledger_apply(
    p_account bigint, p_debit boolean, p_pending_delta bigint, p_posted_delta bigint, p_check boolean
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_debit THEN
        UPDATE ledger_account
           SET debits_pending = debits_pending + p_pending_delta,
               debits_posted = debits_posted + p_posted_delta
         WHERE id = p_account
           AND (NOT p_check OR NOT no_overdraft
                OR debits_posted + debits_pending + p_pending_delta + p_posted_delta <= credits_posted);
    ELSE
        UPDATE ledger_account
           SET credits_pending = credits_pending + p_pending_delta,
               credits_posted = credits_posted + p_posted_delta
         WHERE id = p_account;
    END IF;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM ledger_account WHERE id = p_account) THEN
            RAISE EXCEPTION 'insufficient balance on account %', p_account USING ERRCODE = 'L0002';
        END IF;
        RAISE EXCEPTION 'no account %', p_account USING ERRCODE = 'L0007';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_id text, p_debit bigint, p_credit bigint, p_amount bigint, p_kind text,
    p_pending boolean, p_timeout_seconds integer, p_data jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    existing ledger_transfer%ROWTYPE;
    inserted text;
    p_state text := CASE WHEN p_pending THEN 'pending' ELSE 'posted' END;
BEGIN
    -- The insert comes first: a concurrent duplicate waits on the primary key, then sees it.
    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state,
                                 timeout_at, data, created_at)
    VALUES (p_id, p_debit, p_credit, p_amount, p_kind, p_state,
            CASE WHEN p_pending AND p_timeout_seconds IS NOT NULL
                 THEN now() + make_interval(secs => p_timeout_seconds) END,
            coalesce(p_data, '{}'::jsonb), now())
    ON CONFLICT (id) DO NOTHING
    RETURNING id INTO inserted;

    IF inserted IS NULL THEN
        SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
        IF existing.debit_account_id = p_debit AND existing.credit_account_id = p_credit
           AND existing.amount = p_amount AND existing.kind = p_kind
           AND (existing.state = 'posted') = (NOT p_pending) THEN
            RETURN 'exists';
        END IF;
        RAISE EXCEPTION 'transfer % exists with different parameters', p_id USING ERRCODE = 'L0001';
    END IF;

    IF p_pending THEN
        INSERT INTO ledger_pending (transfer_id) VALUES (p_id);
    END IF;

    IF p_debit < p_credit THEN
        PERFORM ledger_apply(p_debit, true, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, true);
        PERFORM ledger_apply(p_credit, false, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, false);
    ELSE
        PERFORM ledger_apply(p_credit, false, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, false);
        PERFORM ledger_apply(p_debit, true, CASE WHEN p_pending THEN p_amount ELSE 0 END,
                             CASE WHEN p_pending THEN 0 ELSE p_amount END, true);
    END IF;
    RETURN 'created';
END $$;

-- Post (p_post = true) or void a pending transfer; an expired one can be voided, never posted.
-- Open holds are the rows of ledger_pending: resolving one deletes its row (the exactly-once gate)
-- and appends the resolution transfer; the pending transfer row itself is never updated, so the
-- hot path writes no new version of it and none of its index entries.
CREATE OR REPLACE FUNCTION ledger_resolve_pending(
    p_id text, p_pending_id text, p_post boolean, p_ignore_timeout boolean, p_kind text, p_data jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    pend ledger_transfer%ROWTYPE;
    existing ledger_transfer%ROWTYPE;
BEGIN
    SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
    IF FOUND THEN
        IF existing.pending_id = p_pending_id
           AND existing.state = (CASE WHEN p_post THEN 'posted' ELSE 'voided' END) THEN
            RETURN 'exists';
        END IF;
        RAISE EXCEPTION 'transfer % exists with different parameters', p_id USING ERRCODE = 'L0001';
    END IF;

    SELECT * INTO pend FROM ledger_transfer WHERE id = p_pending_id;
    IF NOT FOUND OR pend.state <> 'pending' THEN
        RAISE EXCEPTION 'no pending transfer %', p_pending_id USING ERRCODE = 'L0003';
    END IF;
    IF p_post AND pend.timeout_at IS NOT NULL AND pend.timeout_at <= now() THEN
        RAISE EXCEPTION 'pending transfer % timed out', p_pending_id USING ERRCODE = 'L0006';
    END IF;

    -- The exactly-once gate: of all concurrent resolvers, one deletes the open-hold row.
    DELETE FROM ledger_pending WHERE transfer_id = p_pending_id;
    IF NOT FOUND THEN
        -- Resolved already; by a concurrent call with this same id (we waited for its lock)?
        SELECT * INTO existing FROM ledger_transfer WHERE id = p_id;
        IF FOUND AND existing.pending_id = p_pending_id
           AND existing.state = (CASE WHEN p_post THEN 'posted' ELSE 'voided' END) THEN
            RETURN 'exists';
        END IF;
        SELECT * INTO existing FROM ledger_transfer WHERE pending_id = p_pending_id;
        IF existing.state = 'posted' THEN
            RAISE EXCEPTION 'pending transfer % already posted', p_pending_id USING ERRCODE = 'L0004';
        END IF;
        RAISE EXCEPTION 'pending transfer % already voided', p_pending_id USING ERRCODE = 'L0005';
    END IF;

    INSERT INTO ledger_transfer (id, debit_account_id, credit_account_id, amount, kind, state,
                                 pending_id, data, created_at)
    VALUES (p_id, pend.debit_account_id, pend.credit_account_id, pend.amount, p_kind,
            CASE WHEN p_post THEN 'posted' ELSE 'voided' END, p_pending_id, coalesce(p_data, '{}'::jsonb), now());

    IF pend.debit_account_id < pend.credit_account_id THEN
        PERFORM ledger_apply(pend.debit_account_id, true, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
        PERFORM ledger_apply(pend.credit_account_id, false, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
    ELSE
        PERFORM ledger_apply(pend.credit_account_id, false, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
        PERFORM ledger_apply(pend.debit_account_id, true, -pend.amount,
                             CASE WHEN p_post THEN pend.amount ELSE 0 END, false);
    END IF;
    RETURN CASE WHEN p_post THEN 'posted' ELSE 'voided' END;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS ledger_resolve_pending(text, text, boolean, boolean, text, jsonb);
DROP FUNCTION IF EXISTS ledger_create_transfer(text, bigint, bigint, bigint, text, boolean, integer, jsonb);
DROP FUNCTION IF EXISTS ledger_apply(bigint, boolean, bigint, bigint, boolean);
"""

# The stamping hold, defined once: one unit of a wallet held for a stamp (pending wallet -> used,
# with a timeout). The stamp intake (``stamping.sql``) and ``billing.quota.hold_quota`` both call it.
CREATE_HOLD_UNIT = r"""
CREATE OR REPLACE FUNCTION ledger_hold_unit(
    p_hold_id text, p_wallet bigint, p_used bigint, p_timeout_seconds integer
) RETURNS text LANGUAGE sql AS $$
    SELECT ledger_create_transfer(p_hold_id, p_wallet, p_used, 1, 'hold', true, p_timeout_seconds, '{}'::jsonb)
$$;
"""
DROP_HOLD_UNIT = "DROP FUNCTION IF EXISTS ledger_hold_unit(text, bigint, bigint, integer);"
