-- Standby schema, version 4: anchors left by pruning the event history, so that what remains
-- still verifies from the last pruned event's hash.

CREATE TABLE event_anchors (
    seq             INTEGER PRIMARY KEY,
    hash            TEXT NOT NULL,
    at              TEXT NOT NULL,
    pruned_before   TEXT NOT NULL,
    pruned_count    INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    signature       TEXT
);
