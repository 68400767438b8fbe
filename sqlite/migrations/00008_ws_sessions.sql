-- Durable WebSocket sessions (issue 16): what a server needs to resume a
-- session after its process died, or on another instance. One row per
-- session; its unacknowledged server frames and its cached request results
-- hang off it and go with it (ON DELETE CASCADE). epoch fences owners: a
-- claim increments it, and every save is UPDATE ... WHERE id = ? AND
-- epoch = ?, so the writes of a previous owner change nothing. Token hashes
-- are SHA-256 of the resume tokens, never the tokens. detached_at is NULL
-- while a connection is attached.

-- +goose Up
CREATE TABLE ws_sessions (
    id              TEXT    PRIMARY KEY,
    key_id          TEXT    NOT NULL,
    token_hash      BLOB    NOT NULL,
    prev_token_hash BLOB,
    epoch           INTEGER NOT NULL CHECK (epoch > 0),
    owner           TEXT    NOT NULL DEFAULT '',
    in_seq          INTEGER NOT NULL DEFAULT 0,
    out_seq         INTEGER NOT NULL DEFAULT 0,
    client_acked    INTEGER NOT NULL DEFAULT 0,
    subscribed      INTEGER NOT NULL DEFAULT 0,
    event_cursor    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    detached_at     INTEGER
) STRICT;

-- The cap on sessions per key counts a key's sessions.
CREATE INDEX ws_sessions_key ON ws_sessions (key_id);
-- The cleanup finds sessions detached for longer than the TTL; attached
-- ones (NULL) are never candidates and stay out of the index.
CREATE INDEX ws_sessions_detached ON ws_sessions (detached_at) WHERE detached_at IS NOT NULL;

-- Unacknowledged server frames, by seq. A save deletes those the client
-- acknowledged. WITHOUT ROWID: the primary key is the only access path.
CREATE TABLE ws_session_frames (
    session_id TEXT    NOT NULL REFERENCES ws_sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT, WITHOUT ROWID;

-- The at-most-once cache of request results. pos (the rowid) gives the
-- insertion order, which an upsert of an existing request id keeps; a
-- NULL body is a tombstone (dropped for space: a re-sent request is
-- refused, not run again).
CREATE TABLE ws_session_results (
    pos        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES ws_sessions (id) ON DELETE CASCADE,
    request_id TEXT    NOT NULL,
    body       BLOB,
    UNIQUE (session_id, request_id)
) STRICT;

-- +goose Down
DROP TABLE ws_session_results;
DROP TABLE ws_session_frames;
DROP INDEX ws_sessions_detached;
DROP INDEX ws_sessions_key;
DROP TABLE ws_sessions;
