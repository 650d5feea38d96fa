-- Standby schema (PostgreSQL), version 4: a batch's inserts and its deployments' locks in one
-- statement. No table changes.
--
-- `standby_lock_deployments` gets a form with a fourth argument, `rows_written`, that otherwise does
-- what version 3's does. A batch sends its inserts as the data-modifying WITH parts of the statement
-- that calls the function, one round trip less before the locks. PostgreSQL runs a WITH part that the
-- main query does not read only after the main query, which would insert while holding the locks; a
-- WITH part the main query reads runs when it is read. So each part returns a row per row it wrote,
-- and the call reads their count into `rows_written`: the function's arguments are evaluated before
-- it runs, so the rows are written before any lock is waited for. Called alone, it is given 0.
-- `waited` counts from the function's start, not the statement's, which may have written for a while.
-- Version 3's three-argument form stays: instances of the build before call it until they are
-- replaced.
CREATE FUNCTION standby_lock_deployments(
    deployment_ids TEXT[], maintenance_from TEXT, with_chain_head BOOLEAN, rows_written BIGINT
)
RETURNS TABLE (
    waited FLOAT8, seq BIGINT, hash TEXT, part TEXT, deployment_id TEXT, hub_id TEXT, state TEXT,
    window_seq BIGINT, id TEXT, hubs TEXT, starts_at TEXT, ends_at TEXT, ended_at TEXT, reason TEXT,
    created_by TEXT, created_at TEXT
)
LANGUAGE plpgsql VOLATILE
AS $function$
DECLARE
    locked_id TEXT;
    lock_waited FLOAT8;
    started TIMESTAMPTZ := clock_timestamp();
BEGIN
    FOREACH locked_id IN ARRAY deployment_ids LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('deployment:' || locked_id, 0));
    END LOOP;
    lock_waited := extract(epoch FROM clock_timestamp() - started);
    IF with_chain_head THEN
        -- Only the chain head is locked: a locking clause cannot apply to a UNION.
        RETURN QUERY
        SELECT lock_waited, c.seq, c.hash, r.*
        FROM chain_head c LEFT JOIN standby_locked_rows(deployment_ids, maintenance_from) r ON true
        WHERE c.id = 1
        ORDER BY r.window_seq NULLS FIRST
        FOR UPDATE OF c;
    ELSE
        RETURN QUERY
        SELECT lock_waited, NULL::BIGINT, NULL::TEXT, r.*
        FROM (SELECT) AS one LEFT JOIN standby_locked_rows(deployment_ids, maintenance_from) r ON true
        ORDER BY r.window_seq NULLS FIRST;
    END IF;
END
$function$;
