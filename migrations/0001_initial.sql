-- Standby schema, version 1: raw deliveries, alerts, and the hash-chained event log.
-- Frozen once shipped: change the schema by adding a new numbered file.

-- Every authenticated webhook delivery, verbatim, before anything is derived from it.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    received_at     TEXT NOT NULL,
    remote_address  TEXT,
    content_type    TEXT,
    body            BLOB NOT NULL,
    sha256          TEXT NOT NULL,
    byte_count      INTEGER NOT NULL,
    outcome         TEXT NOT NULL
                    CHECK (outcome IN ('new', 'changed', 'duplicate', 'stale', 'unrecognized', 'malformed')),
    schema          TEXT,
    alert_id        TEXT REFERENCES alerts(id),
    detail          TEXT
);
CREATE INDEX deliveries_alert ON deliveries(alert_id);
CREATE INDEX deliveries_received ON deliveries(received_at);

-- One row per alert identity (Fired and Resolved of one alert share it), and one per
-- unrecognized or malformed body, so that those are listed and counted too.
CREATE TABLE alerts (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    alert_key           TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL CHECK (status IN ('recognized', 'unrecognized', 'malformed')),
    azure_alert_id      TEXT,
    rule                TEXT,
    severity            TEXT,
    signal_type         TEXT,
    monitoring_service  TEXT,
    schema              TEXT,
    kind                TEXT,
    condition           TEXT CHECK (condition IN ('fired', 'resolved')),
    target_ids          TEXT NOT NULL DEFAULT '[]',
    hubs                TEXT NOT NULL DEFAULT '[]',
    fired_at            TEXT,
    resolved_at         TEXT,
    observed_at         TEXT,
    description         TEXT,
    is_test             INTEGER NOT NULL DEFAULT 0,
    details             TEXT,
    state_fingerprint   TEXT,
    delivery_count      INTEGER NOT NULL DEFAULT 1,
    duplicate_count     INTEGER NOT NULL DEFAULT 0,
    first_delivery_id   TEXT NOT NULL,
    last_delivery_id    TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX alerts_status ON alerts(status, seq);
CREATE INDEX alerts_condition ON alerts(condition, seq);
CREATE INDEX alerts_updated ON alerts(updated_at);

-- The hubs an alert concerns, for filtering by hub or deployment.
CREATE TABLE alert_hubs (
    alert_id        TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    deployment_id   TEXT NOT NULL,
    hub_id          TEXT NOT NULL,
    PRIMARY KEY (alert_id, deployment_id, hub_id)
);
CREATE INDEX alert_hubs_hub ON alert_hubs(hub_id, alert_id);
CREATE INDEX alert_hubs_deployment ON alert_hubs(deployment_id, alert_id);

-- The append-only history. hash = SHA-256(prev_hash || canonical JSON of the event without hash).
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    type            TEXT NOT NULL,
    deployment_id   TEXT,
    hub             TEXT,
    actor           TEXT NOT NULL,
    data            TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE INDEX events_type ON events(type, seq);
CREATE INDEX events_deployment ON events(deployment_id, seq);
CREATE INDEX events_hub ON events(hub, seq);
CREATE INDEX events_at ON events(at);

-- Written by the readiness probe: proves the database still takes writes.
CREATE TABLE readiness (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at  TEXT NOT NULL
);
