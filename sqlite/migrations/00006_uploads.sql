-- Resumable uploads (issue 10, tus): one row per upload in progress or
-- finished. offset only grows, and a chunk advances it only from the offset
-- it was written at (UPDATE ... WHERE "offset" = ?), so two writers of one
-- upload never both advance it. hash_state is the SHA-256 state of the
-- first "offset" bytes, so a resume after a restart re-reads nothing.
-- file_id is set when the upload has become a file.

-- +goose Up
CREATE TABLE uploads (
    id            TEXT    PRIMARY KEY,
    owner_key_id  TEXT    NOT NULL,
    length        INTEGER NOT NULL CHECK (length >= -1),
    "offset"      INTEGER NOT NULL CHECK ("offset" >= 0),
    metadata      TEXT    NOT NULL DEFAULT '',
    name          TEXT    NOT NULL DEFAULT '',
    content_type  TEXT    NOT NULL DEFAULT '',
    concat        TEXT    NOT NULL DEFAULT '' CHECK (concat IN ('', 'partial', 'final')),
    parts         TEXT    NOT NULL DEFAULT '',
    hash_state    BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    file_id       TEXT    NOT NULL DEFAULT '',
    deduplicated  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The cap on open uploads counts an owner's unfinished uploads.
CREATE INDEX uploads_owner ON uploads (owner_key_id, file_id);
-- The cleanup finds expired uploads (unfinished ones, and the records of
-- finished ones, kept until then so that a later HEAD finds the file).
CREATE INDEX uploads_expiry ON uploads (expires_at);

-- +goose Down
DROP INDEX uploads_expiry;
DROP INDEX uploads_owner;
DROP TABLE uploads;
