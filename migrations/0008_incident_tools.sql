-- Standby schema, version 8: what happens around an incident. Commands that nobody acknowledges
-- in time become `expired` (the CHECK gains the value: SQLite cannot alter a CHECK in place, so the
-- table is rebuilt by its documented procedure, keeping ids, seq values and the AUTOINCREMENT
-- counter); maintenance windows declared through the API; the outbox of notifications to people;
-- and the record of drills.

CREATE TABLE commands_rebuilt (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    failover_event_id   TEXT NOT NULL REFERENCES failover_events(id),
    position            INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    hub                 TEXT NOT NULL,
    from_hub            TEXT,
    to_hub              TEXT,
    parameters          TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status = 'pending' OR status = 'delivered' OR status = 'succeeded'
                               OR status = 'failed' OR status = 'dry_run' OR status = 'superseded'
                               OR status = 'expired'),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    ack_outcome         TEXT,
    ack_detail          TEXT,
    ack_actor           TEXT,
    acked_at            TEXT,
    ack_duplicates      INTEGER NOT NULL DEFAULT 0,
    delivery_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT,
    last_error          TEXT
);
INSERT INTO commands_rebuilt
    (seq, id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters, status,
     created_at, updated_at, ack_outcome, ack_detail, ack_actor, acked_at, ack_duplicates, delivery_attempts,
     next_attempt_at, last_error)
SELECT seq, id, deployment_id, failover_event_id, position, kind, hub, from_hub, to_hub, parameters, status,
       created_at, updated_at, ack_outcome, ack_detail, ack_actor, acked_at, ack_duplicates, delivery_attempts,
       next_attempt_at, last_error
FROM commands ORDER BY seq;
DROP TABLE commands;
ALTER TABLE commands_rebuilt RENAME TO commands;
CREATE INDEX commands_status ON commands(status, seq);
CREATE INDEX commands_deployment ON commands(deployment_id, seq);
CREATE INDEX commands_event ON commands(failover_event_id, position);

-- Windows declared through the API (the config's own windows live in the config). The fingerprint
-- of (deployment, hubs, start, end, reason) makes a repeated declaration a counted duplicate.
CREATE TABLE maintenance_windows (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    fingerprint         TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    hubs                TEXT NOT NULL,
    starts_at           TEXT NOT NULL,
    ends_at             TEXT NOT NULL,
    ended_at            TEXT,
    reason              TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    duplicate_count     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX maintenance_windows_deployment ON maintenance_windows(deployment_id, ends_at);

-- One row per (event, receiver): written in the transaction that decided, delivered by the leader.
CREATE TABLE notifications (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    receiver            TEXT NOT NULL,
    event               TEXT NOT NULL,
    deployment_id       TEXT NOT NULL,
    incident_key        TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action = 'trigger' OR action = 'resolve'),
    severity            TEXT NOT NULL,
    summary             TEXT NOT NULL,
    details             TEXT NOT NULL,
    occurred_at         TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status = 'pending' OR status = 'delivered' OR status = 'failed'),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT,
    last_error          TEXT,
    delivered_at        TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
CREATE INDEX notifications_deployment ON notifications(deployment_id, seq);

-- Drills: the record of each practice run (its times and outcome) as JSON; the engine's own
-- state of a running drill lives with the deployment's routing state.
CREATE TABLE drills (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status = 'scheduled' OR status = 'running' OR status = 'completed'
                               OR status = 'aborted'),
    body                TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX drills_deployment ON drills(deployment_id, seq);

-- Readiness reports as they came (the latest per check lives in the hub's tracker state),
-- idempotent on (hub, check, observedAt).
CREATE TABLE readiness_reports (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    hub_id              TEXT NOT NULL,
    check_name          TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status = 'ready' OR status = 'not_ready' OR status = 'unknown'),
    detail              TEXT,
    observed_at         TEXT NOT NULL,
    received_at         TEXT NOT NULL,
    actor               TEXT NOT NULL,
    duplicate_count     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (hub_id, check_name, observed_at)
);
