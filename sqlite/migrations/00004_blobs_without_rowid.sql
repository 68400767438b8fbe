-- The cleanup scan reads every blob record in sum order (ListBlobs). In
-- the rowid table that order is the sum index's, and each row then had to
-- be fetched from the table by its rowid, which follows insertion order:
-- nearly one random page read per record. A WITHOUT ROWID table is stored
-- in its primary key's order, so the scan is one sequential pass; the
-- table also loses the separate sum index, so blob writes touch one b-tree
-- fewer. Rows are small (a sum and a few integers), which is what WITHOUT
-- ROWID suits. Columns, constraints and indexes are otherwise unchanged.
--
-- SQLite cannot change a table into WITHOUT ROWID in place: the table is
-- rebuilt. files.sha256 REFERENCES blobs (sha256) and foreign keys are on
-- (they cannot be turned off inside the migration's transaction), and a
-- rename of blobs would rewrite that reference to the new name. So the rows
-- are copied aside, blobs is dropped and created anew under its own name,
-- and the rows are copied back, with the foreign keys deferred to the
-- commit: the drop leaves every file without its blob for a moment, the
-- copy back gives each its blob again, and the commit checks that none is
-- left without. The reference in files is never touched.

-- +goose Up
PRAGMA defer_foreign_keys = ON;
CREATE TABLE blobs_copy AS SELECT sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since FROM blobs;
DROP TABLE blobs;
CREATE TABLE blobs (
    sha256             TEXT    NOT NULL PRIMARY KEY,
    size               INTEGER NOT NULL CHECK (size >= 0),
    -- files (live or soft-deleted) that point at the blob
    ref_count          INTEGER NOT NULL CHECK (ref_count >= 0),
    created_at         INTEGER NOT NULL,
    -- set when ref_count drops to 0, cleared when it rises again; the
    -- cleanup service removes blobs unreferenced for longer than its grace
    unreferenced_since INTEGER,
    -- set by the mark phase, cleared by a new reference
    marked_at          INTEGER,
    -- when the object was found missing from the blob store
    missing_since      INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO blobs (sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since)
    SELECT sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since FROM blobs_copy ORDER BY sha256;
DROP TABLE blobs_copy;
CREATE INDEX blobs_unreferenced_since ON blobs (unreferenced_since)
    WHERE unreferenced_since IS NOT NULL;

-- +goose Down
-- The rowid table as migrations 1 and 3 left it.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE blobs_copy AS SELECT sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since FROM blobs;
DROP TABLE blobs;
CREATE TABLE blobs (
    sha256             TEXT    NOT NULL PRIMARY KEY,
    size               INTEGER NOT NULL CHECK (size >= 0),
    ref_count          INTEGER NOT NULL CHECK (ref_count >= 0),
    created_at         INTEGER NOT NULL,
    unreferenced_since INTEGER,
    marked_at          INTEGER,
    missing_since      INTEGER
) STRICT;
INSERT INTO blobs (sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since)
    SELECT sha256, size, ref_count, created_at, unreferenced_since, marked_at, missing_since FROM blobs_copy;
DROP TABLE blobs_copy;
CREATE INDEX blobs_unreferenced_since ON blobs (unreferenced_since)
    WHERE unreferenced_since IS NOT NULL;
