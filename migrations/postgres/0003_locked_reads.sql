-- Standby schema (PostgreSQL), version 3: taking deployments' locks and reading their state in one
-- round trip. No table changes.
--
-- The transaction that applies a signal takes its deployments' advisory locks (in the caller's order,
-- which is sorted) and then reads their hubs' tracker state, their routing state and the maintenance
-- windows that may be in effect from `maintenance_from` on (none when it is NULL), with, if asked, the
-- chain head under its row lock. As separate statements this costs a round trip more while the locks
-- are held, and the read is parsed and planned on every call; here its plans are kept per session.
-- The read follows the locks inside the function because, in READ COMMITTED, every statement of a
-- VOLATILE function reads what was committed when that statement began: after the locks were granted.
--
-- One row per hub state, routing state and window (`part` says which, windows in creation order);
-- every row carries how long the locks took (`waited`, seconds) and, with the chain head, its `seq`
-- and `hash`. When nothing else is found there is still one row, whose `part` is NULL.

-- What `standby_lock_deployments` reads of the deployments it locked. A SQL function of one SELECT:
-- inlined into the query that calls it, so it reads with that query's snapshot.
CREATE FUNCTION standby_locked_rows(deployment_ids TEXT[], maintenance_from TEXT)
RETURNS TABLE (
    part TEXT, deployment_id TEXT, hub_id TEXT, state TEXT, window_seq BIGINT, id TEXT, hubs TEXT,
    starts_at TEXT, ends_at TEXT, ended_at TEXT, reason TEXT, created_by TEXT, created_at TEXT
)
LANGUAGE sql STABLE
AS $function$
    SELECT 'hub', h.deployment_id, h.hub_id, h.state, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT,
        NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
    FROM hub_health h WHERE h.deployment_id = ANY(deployment_ids)
    UNION ALL
    SELECT 'routing', d.deployment_id, NULL, d.state, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM deployment_state d WHERE d.deployment_id = ANY(deployment_ids)
    UNION ALL
    SELECT 'window', w.deployment_id, NULL, NULL, w.seq, w.id, w.hubs, w.starts_at, w.ends_at, w.ended_at,
        w.reason, w.created_by, w.created_at
    FROM maintenance_windows w
    WHERE maintenance_from IS NOT NULL AND w.deployment_id = ANY(deployment_ids)
        AND COALESCE(w.ended_at, w.ends_at) > maintenance_from AND w.ends_at > maintenance_from
$function$;

CREATE FUNCTION standby_lock_deployments(deployment_ids TEXT[], maintenance_from TEXT, with_chain_head BOOLEAN)
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
BEGIN
    FOREACH locked_id IN ARRAY deployment_ids LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('deployment:' || locked_id, 0));
    END LOOP;
    lock_waited := extract(epoch FROM clock_timestamp() - statement_timestamp());
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
