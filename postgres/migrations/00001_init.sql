-- The initial schema, the PostgreSQL counterpart of sqlite's 00001_init.sql
-- (same version numbers, so `filehub migrate status` reads the same on both
-- databases). Times are timestamptz (microsecond precision, UTC on the way
-- out); the event log stores a JSON snapshot of the file.

-- +goose Up
-- Sums are COLLATE "C" so that they sort bytewise, like the blob store's
-- listing, whatever the database's default collation, and the keyset scans
-- of the cleanup service use the primary key index.
CREATE TABLE blobs (
    sha256             text        COLLATE "C" NOT NULL PRIMARY KEY,
    size               bigint      NOT NULL CHECK (size >= 0),
    -- files (live or soft-deleted) that point at the blob
    ref_count          bigint      NOT NULL CHECK (ref_count >= 0),
    created_at         timestamptz NOT NULL,
    -- set when ref_count drops to 0, cleared when it rises again; the
    -- cleanup service removes blobs unreferenced for longer than its grace
    unreferenced_since timestamptz
);

CREATE INDEX blobs_unreferenced_since ON blobs (unreferenced_since)
    WHERE unreferenced_since IS NOT NULL;

CREATE TABLE files (
    -- seq gives listings a stable order and cursors something to point at;
    -- an identity is never reused, so a purged file's seq is not either.
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    name         text        NOT NULL,
    size         bigint      NOT NULL CHECK (size >= 0),
    sha256       text        COLLATE "C" NOT NULL REFERENCES blobs (sha256),
    content_type text        NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    purge_after  timestamptz,
    owner_key_id text        NOT NULL
);

-- Needed for the foreign key check when a blob record is deleted.
CREATE INDEX files_sha256 ON files (sha256);
-- The purge scan of the cleanup service.
CREATE INDEX files_purge_after ON files (purge_after)
    WHERE purge_after IS NOT NULL;

CREATE TABLE api_keys (
    -- insertion order, to list keys created at the same time stably
    seq        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id         text        NOT NULL PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    scopes     text[]      NOT NULL,
    -- SHA-256 of the secret; the secret itself is never stored
    hash       bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- Event ids are not taken from a sequence: they are assigned from the
-- 'events' row of log_counters, whose row lock serializes appends until
-- commit, so ids become visible in order and without gaps (see the package
-- doc), and the row keeps the highest id ever assigned after a trim.
CREATE TABLE events (
    id   bigint      NOT NULL PRIMARY KEY,
    type text        NOT NULL,
    time timestamptz NOT NULL,
    -- JSON snapshot of the file after the change (before it, for a purge)
    file jsonb
);

CREATE TABLE log_counters (
    name text   NOT NULL PRIMARY KEY,
    last bigint NOT NULL CHECK (last >= 0)
);
INSERT INTO log_counters (name, last) VALUES ('events', 0);

-- +goose Down
DROP TABLE log_counters;
DROP TABLE events;
DROP TABLE api_keys;
DROP TABLE files;
DROP TABLE blobs;
