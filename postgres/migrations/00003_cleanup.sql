-- The cleanup service (issue 4): who deleted a file and why, the mark and
-- missing state of blobs, the append-only audit log, the record of cleanup
-- runs, settings changed at run time, and leases so that only one cleanup
-- runs at a time even with several processes on one database.

-- +goose Up
ALTER TABLE files ADD COLUMN deleted_by text;
ALTER TABLE files ADD COLUMN delete_reason text;
-- true when the blob's object was found missing from the blob store
ALTER TABLE files ADD COLUMN content_missing boolean NOT NULL DEFAULT false;

-- Set by the mark phase, cleared by a new reference: a sweep deletes only
-- blobs still marked, so a revival between mark and sweep survives.
ALTER TABLE blobs ADD COLUMN marked_at timestamptz;
ALTER TABLE blobs ADD COLUMN missing_since timestamptz;

-- Snapshot of a cleanup run for cleanup.* events.
ALTER TABLE events ADD COLUMN run jsonb;

-- Audit ids come from the 'audit' row of log_counters, like event ids, so
-- that paging by id (AuditFilter.AfterID) never skips an entry that
-- commits late.
CREATE TABLE audit_log (
    id          bigint      NOT NULL PRIMARY KEY,
    time        timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    target_kind text        NOT NULL,
    target      text        NOT NULL,
    bytes       bigint      NOT NULL DEFAULT 0,
    reason      text        NOT NULL DEFAULT '',
    run_id      bigint
);
INSERT INTO log_counters (name, last) VALUES ('audit', 0);

CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_run ON audit_log (run_id) WHERE run_id IS NOT NULL;

-- Append-only: the store never updates or deletes audit entries, and
-- neither may anyone with psql by accident.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE cleanup_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger     text        NOT NULL,
    actor       text        NOT NULL,
    dry_run     boolean     NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text        NOT NULL,
    trash_scanned             bigint NOT NULL DEFAULT 0,
    trash_found               bigint NOT NULL DEFAULT 0,
    trash_deleted             bigint NOT NULL DEFAULT 0,
    trash_bytes               bigint NOT NULL DEFAULT 0,
    orphan_object_scanned     bigint NOT NULL DEFAULT 0,
    orphan_object_found       bigint NOT NULL DEFAULT 0,
    orphan_object_deleted     bigint NOT NULL DEFAULT 0,
    orphan_object_bytes       bigint NOT NULL DEFAULT 0,
    unreferenced_blob_scanned bigint NOT NULL DEFAULT 0,
    unreferenced_blob_found   bigint NOT NULL DEFAULT 0,
    unreferenced_blob_deleted bigint NOT NULL DEFAULT 0,
    unreferenced_blob_bytes   bigint NOT NULL DEFAULT 0,
    missing_object_scanned    bigint NOT NULL DEFAULT 0,
    missing_object_found      bigint NOT NULL DEFAULT 0,
    missing_object_deleted    bigint NOT NULL DEFAULT 0,
    missing_object_bytes      bigint NOT NULL DEFAULT 0,
    stale_temp_scanned        bigint NOT NULL DEFAULT 0,
    stale_temp_found          bigint NOT NULL DEFAULT 0,
    stale_temp_deleted        bigint NOT NULL DEFAULT 0,
    stale_temp_bytes          bigint NOT NULL DEFAULT 0,
    bytes_freed bigint NOT NULL DEFAULT 0,
    errors      bigint NOT NULL DEFAULT 0,
    -- the cleanup service's full report, every target included; text, not
    -- jsonb, so it comes back byte for byte
    report      text
);

CREATE TABLE cleanup_settings (
    key   text NOT NULL PRIMARY KEY,
    value text NOT NULL
);

-- Leases are rows with an expiry, not advisory locks: they must outlive a
-- connection (the pool may close it) and name their holder.
CREATE TABLE leases (
    name       text        NOT NULL PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE cleanup_settings;
DROP TABLE cleanup_runs;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE audit_log;
DELETE FROM log_counters WHERE name = 'audit';
ALTER TABLE events DROP COLUMN run;
ALTER TABLE blobs DROP COLUMN missing_since;
ALTER TABLE blobs DROP COLUMN marked_at;
ALTER TABLE files DROP COLUMN content_missing;
ALTER TABLE files DROP COLUMN delete_reason;
ALTER TABLE files DROP COLUMN deleted_by;
