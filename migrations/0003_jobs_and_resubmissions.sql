-- Standby schema, version 3: training jobs and the durable, leased resubmission queue.

CREATE TABLE training_jobs (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    external_id         TEXT NOT NULL UNIQUE,
    deployment_id       TEXT NOT NULL,
    hub_id              TEXT NOT NULL,
    spec                TEXT NOT NULL,
    spec_sha256         TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'interrupted')),
    priority            INTEGER NOT NULL DEFAULT 0,
    submitted_at        TEXT,
    interrupted_by      TEXT,
    resubmitted_from    TEXT,
    registered_by       TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX training_jobs_hub_status ON training_jobs(hub_id, status);
CREATE INDEX training_jobs_status ON training_jobs(status, seq);

-- One item per (job, failover event): a failover replayed never queues a job twice.
CREATE TABLE resubmissions (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    job_id              TEXT NOT NULL REFERENCES training_jobs(id),
    failover_event_id   TEXT NOT NULL,
    deployment_id       TEXT NOT NULL,
    from_hub            TEXT NOT NULL,
    target_hub          TEXT,
    priority            INTEGER NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('queued', 'leased', 'completed', 'dead', 'cancelled', 'unassigned')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    available_at        TEXT NOT NULL,
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    last_error          TEXT,
    new_job_id          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (job_id, failover_event_id)
);
CREATE INDEX resubmissions_claim ON resubmissions(status, priority DESC, available_at, seq);
CREATE INDEX resubmissions_lease ON resubmissions(status, lease_expires_at);
