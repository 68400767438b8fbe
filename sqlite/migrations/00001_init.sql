-- The initial schema. Times are INTEGER Unix nanoseconds, UTC, everywhere:
-- they compare and index as plain integers and keep full precision.
-- Tables are STRICT so that a value of the wrong type is an error, not a
-- silent conversion.

-- +goose Up
CREATE TABLE blobs (
    sha256             TEXT    NOT NULL PRIMARY KEY,
    size               INTEGER NOT NULL CHECK (size >= 0),
    -- files (live or soft-deleted) that point at the blob
    ref_count          INTEGER NOT NULL CHECK (ref_count >= 0),
    created_at         INTEGER NOT NULL,
    -- set when ref_count drops to 0, cleared when it rises again; the
    -- cleanup service removes blobs unreferenced for longer than its grace
    unreferenced_since INTEGER
) STRICT;

CREATE INDEX blobs_unreferenced_since ON blobs (unreferenced_since)
    WHERE unreferenced_since IS NOT NULL;

CREATE TABLE files (
    -- seq gives listings a stable order and cursors something to point at;
    -- AUTOINCREMENT so a purged file's seq is never reused.
    seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL REFERENCES blobs (sha256),
    content_type TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    purge_after  INTEGER,
    owner_key_id TEXT    NOT NULL
) STRICT;

-- Needed for the foreign key check when a blob record is deleted.
CREATE INDEX files_sha256 ON files (sha256);
-- The purge scan of the cleanup service.
CREATE INDEX files_purge_after ON files (purge_after)
    WHERE purge_after IS NOT NULL;

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    -- comma-separated scope names
    scopes     TEXT    NOT NULL,
    -- SHA-256 of the secret; the secret itself is never stored
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE events (
    id   INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    type TEXT    NOT NULL,
    time INTEGER NOT NULL,
    -- JSON snapshot of the file after the change (before it, for a purge)
    file TEXT
) STRICT;

-- +goose Down
DROP TABLE events;
DROP TABLE api_keys;
DROP INDEX files_purge_after;
DROP INDEX files_sha256;
DROP TABLE files;
DROP INDEX blobs_unreferenced_since;
DROP TABLE blobs;
