-- Resumable uploads (issue 10, tus): one row per upload in progress or
-- finished. offset only grows, and a chunk advances it only from the offset
-- it was written at (UPDATE ... WHERE "offset" = $n), so two writers of one
-- upload, on two instances, never both advance it. hash_state is the
-- SHA-256 state of the first "offset" bytes, so a resume on any instance
-- re-reads nothing. file_id is set when the upload has become a file.

-- +goose Up
CREATE TABLE uploads (
    id            text        PRIMARY KEY,
    owner_key_id  text        NOT NULL,
    length        bigint      NOT NULL CHECK (length >= -1),
    "offset"      bigint      NOT NULL CHECK ("offset" >= 0),
    metadata      text        NOT NULL DEFAULT '',
    name          text        NOT NULL DEFAULT '',
    content_type  text        NOT NULL DEFAULT '',
    concat        text        NOT NULL DEFAULT '' CHECK (concat IN ('', 'partial', 'final')),
    parts         text        NOT NULL DEFAULT '',
    hash_state    bytea,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    file_id       text        NOT NULL DEFAULT '',
    deduplicated  boolean     NOT NULL DEFAULT false
);

-- The cap on open uploads counts an owner's unfinished uploads.
CREATE INDEX uploads_owner ON uploads (owner_key_id, file_id);
-- The cleanup finds expired uploads (unfinished ones, and the records of
-- finished ones, kept until then so that a later HEAD finds the file).
CREATE INDEX uploads_expiry ON uploads (expires_at);

-- +goose Down
DROP INDEX uploads_expiry;
DROP INDEX uploads_owner;
DROP TABLE uploads;
