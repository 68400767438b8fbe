-- Provider sync (issue 6): which content is stored at which model provider
-- for which purpose, as which provider file. One row per (sha256, provider,
-- purpose): the primary key is what makes concurrent pushes of one content
-- upload it once. A push first claims the row as 'pending', uploads, then
-- makes it 'ready'; a pending row whose claim is older than the claim TTL
-- was left by a crashed push and may be taken over.
--
-- There is no foreign key to blobs: a provider copy outlives its blob until
-- the cleanup service has deleted it at the provider.

-- +goose Up
CREATE TABLE provider_files (
    sha256           text        NOT NULL,
    provider         text        NOT NULL,
    purpose          text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('pending', 'ready')),
    provider_file_id text        NOT NULL DEFAULT '',
    size             bigint      NOT NULL CHECK (size >= 0),
    claim_id         text        NOT NULL DEFAULT '',
    claimed_at       timestamptz NOT NULL,
    verified_at      timestamptz,
    last_used_at     timestamptz,
    PRIMARY KEY (sha256, provider, purpose)
);

-- The cleanup of a provider's account looks mappings up by provider file.
CREATE INDEX provider_files_file ON provider_files (provider, provider_file_id);

-- +goose Down
DROP INDEX provider_files_file;
DROP TABLE provider_files;
