-- The cleanup service (issue 4): who deleted a file and why, the mark and
-- missing state of blobs, the append-only audit log, the record of cleanup
-- runs, settings changed at run time, and leases so that only one cleanup
-- runs at a time even with several processes on one database.

-- +goose Up
ALTER TABLE files ADD COLUMN deleted_by TEXT;
ALTER TABLE files ADD COLUMN delete_reason TEXT;
-- 1 when the blob's object was found missing from the blob store
ALTER TABLE files ADD COLUMN content_missing INTEGER NOT NULL DEFAULT 0;

-- Set by the mark phase, cleared by a new reference: a sweep deletes only
-- blobs still marked, so a revival between mark and sweep survives.
ALTER TABLE blobs ADD COLUMN marked_at INTEGER;
ALTER TABLE blobs ADD COLUMN missing_since INTEGER;

-- Snapshot of a cleanup run for cleanup.* events.
ALTER TABLE events ADD COLUMN run TEXT;

CREATE TABLE audit_log (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_kind TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0,
    reason      TEXT    NOT NULL DEFAULT '',
    run_id      INTEGER
) STRICT;

CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_run ON audit_log (run_id) WHERE run_id IS NOT NULL;

-- Append-only: the store never updates or deletes audit entries, and
-- neither may anyone with the sqlite3 shell by accident.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE cleanup_runs (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    trigger     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT    NOT NULL,
    trash_scanned             INTEGER NOT NULL DEFAULT 0,
    trash_found               INTEGER NOT NULL DEFAULT 0,
    trash_deleted             INTEGER NOT NULL DEFAULT 0,
    trash_bytes               INTEGER NOT NULL DEFAULT 0,
    orphan_object_scanned     INTEGER NOT NULL DEFAULT 0,
    orphan_object_found       INTEGER NOT NULL DEFAULT 0,
    orphan_object_deleted     INTEGER NOT NULL DEFAULT 0,
    orphan_object_bytes       INTEGER NOT NULL DEFAULT 0,
    unreferenced_blob_scanned INTEGER NOT NULL DEFAULT 0,
    unreferenced_blob_found   INTEGER NOT NULL DEFAULT 0,
    unreferenced_blob_deleted INTEGER NOT NULL DEFAULT 0,
    unreferenced_blob_bytes   INTEGER NOT NULL DEFAULT 0,
    missing_object_scanned    INTEGER NOT NULL DEFAULT 0,
    missing_object_found      INTEGER NOT NULL DEFAULT 0,
    missing_object_deleted    INTEGER NOT NULL DEFAULT 0,
    missing_object_bytes      INTEGER NOT NULL DEFAULT 0,
    stale_temp_scanned        INTEGER NOT NULL DEFAULT 0,
    stale_temp_found          INTEGER NOT NULL DEFAULT 0,
    stale_temp_deleted        INTEGER NOT NULL DEFAULT 0,
    stale_temp_bytes          INTEGER NOT NULL DEFAULT 0,
    bytes_freed INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    -- the cleanup service's full report, every target included
    report      TEXT
) STRICT;

CREATE TABLE cleanup_settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE leases;
DROP TABLE cleanup_settings;
DROP TABLE cleanup_runs;
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP INDEX audit_log_run;
DROP INDEX audit_log_action;
DROP INDEX audit_log_time;
DROP TABLE audit_log;
ALTER TABLE events DROP COLUMN run;
ALTER TABLE blobs DROP COLUMN missing_since;
ALTER TABLE blobs DROP COLUMN marked_at;
ALTER TABLE files DROP COLUMN content_missing;
ALTER TABLE files DROP COLUMN delete_reason;
ALTER TABLE files DROP COLUMN deleted_by;
