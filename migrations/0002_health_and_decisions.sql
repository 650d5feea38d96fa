-- Standby schema, version 2: health reports, tracked hub health, failure windows, the decision
-- engine's state, failover events and the command outbox.

-- Probe reports, idempotent on (hub, source, observed_at).
CREATE TABLE health_reports (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    hub_id          TEXT NOT NULL,
    source          TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'degraded')),
    observed_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    latency_ms      REAL,
    status_code     INTEGER,
    detail          TEXT,
    actor           TEXT NOT NULL,
    duplicate_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (hub_id, source, observed_at)
);
CREATE INDEX health_reports_hub ON health_reports(hub_id, observed_at);

-- The health tracker's state per hub (per-source streaks, Azure signals, open window), as JSON.
-- `revision` changes with every write, so that a process can trust its decoded copy while the
-- stored revision matches it.
CREATE TABLE hub_health (
    deployment_id   TEXT NOT NULL,
    hub_id          TEXT NOT NULL,
    health          TEXT NOT NULL,
    state           TEXT NOT NULL,
    revision        TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (deployment_id, hub_id)
);

CREATE TABLE failure_windows (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    hub_id              TEXT NOT NULL,
    opened_at           TEXT NOT NULL,
    first_failure_at    TEXT NOT NULL,
    last_failure_at     TEXT NOT NULL,
    failure_count       INTEGER NOT NULL,
    sources             TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    declared_down_at    TEXT,
    closed_at           TEXT,
    updated_at          TEXT NOT NULL
);
CREATE INDEX failure_windows_hub ON failure_windows(hub_id, seq);
CREATE INDEX failure_windows_open ON failure_windows(closed_at, seq);

-- The decision engine's state per deployment, as JSON.
CREATE TABLE deployment_state (
    deployment_id   TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE failover_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    kind            TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    from_hub        TEXT,
    to_hub          TEXT,
    reason          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    evidence        TEXT NOT NULL,
    actor           TEXT NOT NULL,
    dry_run         INTEGER NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('open', 'completed', 'failed', 'superseded', 'recorded', 'dry_run')),
    created_at      TEXT NOT NULL,
    settled_at      TEXT
);
CREATE INDEX failover_events_deployment ON failover_events(deployment_id, seq);

-- The outbox: commands wait here until the application layer acknowledges them.
CREATE TABLE commands (
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
                        CHECK (status IN ('pending', 'delivered', 'succeeded', 'failed', 'dry_run', 'superseded')),
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
CREATE INDEX commands_status ON commands(status, seq);
CREATE INDEX commands_deployment ON commands(deployment_id, seq);
CREATE INDEX commands_event ON commands(failover_event_id, position);
