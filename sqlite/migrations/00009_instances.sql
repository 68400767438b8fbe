-- Cluster-wide rate limits (issue 16): every filehub process on the
-- database heartbeats into this table, and each one counts the instances
-- heard from recently to take its share of the per-key limits. A row is one
-- process's run; it goes when the process stops gracefully, or ages out.
-- heartbeat_at is Unix nanoseconds. (Version 00008 is issue 16's durable
-- WebSocket sessions.)

-- +goose Up
CREATE TABLE instances (
    id           TEXT    NOT NULL PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
) STRICT;
CREATE INDEX instances_heartbeat ON instances (heartbeat_at);

-- +goose Down
DROP INDEX instances_heartbeat;
DROP TABLE instances;
