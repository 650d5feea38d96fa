-- Standby schema, version 7: the same CHECK constraints on deliveries, alerts and health_reports,
-- written as comparisons. SQLite evaluates `x IN ('a', 'b', 'c', ...)` in a CHECK by building an
-- ephemeral index of the list for every row written, which cost each delivery and each report
-- about 5 µs on the single writer; `x = 'a' OR x = 'b' ...` accepts exactly the same values.
-- A CHECK cannot be altered in place, so each table is rebuilt (SQLite's documented procedure:
-- create, copy, drop, rename, re-index). The copy runs once, on upgrade; foreign keys are checked
-- after the migration, and ids, seq values and AUTOINCREMENT counters are kept.

CREATE TABLE deliveries_rebuilt (
    id              TEXT PRIMARY KEY,
    received_at     TEXT NOT NULL,
    remote_address  TEXT,
    content_type    TEXT,
    body            BLOB NOT NULL,
    sha256          TEXT NOT NULL,
    byte_count      INTEGER NOT NULL,
    outcome         TEXT NOT NULL
                    CHECK (outcome = 'new' OR outcome = 'changed' OR outcome = 'duplicate' OR outcome = 'stale'
                           OR outcome = 'unrecognized' OR outcome = 'malformed'),
    schema          TEXT,
    alert_id        TEXT REFERENCES alerts(id),
    detail          TEXT
);
INSERT INTO deliveries_rebuilt
    (id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema, alert_id, detail)
SELECT id, received_at, remote_address, content_type, body, sha256, byte_count, outcome, schema, alert_id, detail
FROM deliveries ORDER BY rowid;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_alert ON deliveries(alert_id);

CREATE TABLE alerts_rebuilt (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    alert_key           TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL
                        CHECK (status = 'recognized' OR status = 'unrecognized' OR status = 'malformed'),
    azure_alert_id      TEXT,
    rule                TEXT,
    severity            TEXT,
    signal_type         TEXT,
    monitoring_service  TEXT,
    schema              TEXT,
    kind                TEXT,
    condition           TEXT CHECK (condition = 'fired' OR condition = 'resolved'),
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
INSERT INTO alerts_rebuilt
    (seq, id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema, kind,
     condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test, details,
     state_fingerprint, delivery_count, duplicate_count, first_delivery_id, last_delivery_id, created_at, updated_at)
SELECT seq, id, alert_key, status, azure_alert_id, rule, severity, signal_type, monitoring_service, schema, kind,
     condition, target_ids, hubs, fired_at, resolved_at, observed_at, description, is_test, details,
     state_fingerprint, delivery_count, duplicate_count, first_delivery_id, last_delivery_id, created_at, updated_at
FROM alerts ORDER BY seq;
-- AUTOINCREMENT never reuses a seq, not even one whose row is gone: carry the counter over.
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'alerts')
WHERE name = 'alerts_rebuilt' AND seq < (SELECT seq FROM sqlite_sequence WHERE name = 'alerts');
DROP TABLE alerts;
ALTER TABLE alerts_rebuilt RENAME TO alerts;
CREATE INDEX alerts_status ON alerts(status, seq);
CREATE INDEX alerts_condition ON alerts(condition, seq);
CREATE INDEX alerts_updated ON alerts(updated_at);

CREATE TABLE health_reports_rebuilt (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    deployment_id   TEXT NOT NULL,
    hub_id          TEXT NOT NULL,
    source          TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome = 'success' OR outcome = 'failure' OR outcome = 'degraded'),
    observed_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    latency_ms      REAL,
    status_code     INTEGER,
    detail          TEXT,
    actor           TEXT NOT NULL,
    duplicate_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (hub_id, source, observed_at)
);
INSERT INTO health_reports_rebuilt
    (seq, id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code, detail,
     actor, duplicate_count)
SELECT seq, id, deployment_id, hub_id, source, outcome, observed_at, received_at, latency_ms, status_code, detail,
     actor, duplicate_count
FROM health_reports ORDER BY seq;
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'health_reports')
WHERE name = 'health_reports_rebuilt' AND seq < (SELECT seq FROM sqlite_sequence WHERE name = 'health_reports');
DROP TABLE health_reports;
ALTER TABLE health_reports_rebuilt RENAME TO health_reports;
CREATE INDEX health_reports_hub ON health_reports(hub_id, observed_at);
