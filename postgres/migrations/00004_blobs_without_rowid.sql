-- SQLite's migration 4 rebuilds its blobs table as WITHOUT ROWID, so that
-- the cleanup scan reads the records in sum order in one sequential pass.
-- PostgreSQL has no rowid table to rebuild: its blobs' primary key index on
-- sha256 already serves that order, so there is nothing to change. The
-- migration exists only to keep the versions aligned with sqlite's.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
