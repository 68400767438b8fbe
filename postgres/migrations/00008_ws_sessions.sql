-- Durable WebSocket sessions (issue 16): what a server needs to resume a
-- session after its process died, or on another instance. One row per
-- session; its unacknowledged server frames and its cached request results
-- hang off it and go with it (ON DELETE CASCADE). epoch fences owners: a
-- claim increments it, and every save is UPDATE ... WHERE id = $n AND
-- epoch = $m, so the writes of a previous owner, on any instance, change
-- nothing. Token hashes are SHA-256 of the resume tokens, never the
-- tokens. detached_at is NULL while a connection is attached.

-- +goose Up
CREATE TABLE ws_sessions (
    id              text        PRIMARY KEY,
    key_id          text        NOT NULL,
    token_hash      bytea       NOT NULL,
    prev_token_hash bytea,
    epoch           bigint      NOT NULL CHECK (epoch > 0),
    owner           text        NOT NULL DEFAULT '',
    in_seq          bigint      NOT NULL DEFAULT 0,
    out_seq         bigint      NOT NULL DEFAULT 0,
    client_acked    bigint      NOT NULL DEFAULT 0,
    subscribed      boolean     NOT NULL DEFAULT false,
    event_cursor    bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    detached_at     timestamptz
);

-- The cap on sessions per key counts a key's sessions.
CREATE INDEX ws_sessions_key ON ws_sessions (key_id);
-- The cleanup finds sessions detached for longer than the TTL; attached
-- ones (NULL) are never candidates and stay out of the index.
CREATE INDEX ws_sessions_detached ON ws_sessions (detached_at) WHERE detached_at IS NOT NULL;

-- Unacknowledged server frames, by seq. A save deletes those the client
-- acknowledged.
CREATE TABLE ws_session_frames (
    session_id text   NOT NULL REFERENCES ws_sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    data       bytea  NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- The at-most-once cache of request results. pos gives the insertion
-- order, which an upsert of an existing request id keeps; a NULL body is a
-- tombstone (dropped for space: a re-sent request is refused, not run
-- again).
CREATE TABLE ws_session_results (
    session_id text   NOT NULL REFERENCES ws_sessions (id) ON DELETE CASCADE,
    request_id text   NOT NULL,
    pos        bigint GENERATED ALWAYS AS IDENTITY,
    body       bytea,
    PRIMARY KEY (session_id, request_id)
);

-- +goose Down
DROP TABLE ws_session_results;
DROP TABLE ws_session_frames;
DROP INDEX ws_sessions_detached;
DROP INDEX ws_sessions_key;
DROP TABLE ws_sessions;
