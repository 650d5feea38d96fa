-- Standby schema, version 6: the history's deployment and hub indexes hold only the events that
-- name one. Half of all events (every delivery.received) name neither, and the filters always ask
-- for a value (deployment_id = ?, hub = ?), which SQLite serves from a partial index.

DROP INDEX events_deployment;
CREATE INDEX events_deployment ON events(deployment_id, seq) WHERE deployment_id IS NOT NULL;
DROP INDEX events_hub;
CREATE INDEX events_hub ON events(hub, seq) WHERE hub IS NOT NULL;
