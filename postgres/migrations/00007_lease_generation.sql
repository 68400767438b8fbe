-- Fenced cleanup (issue 15): each tenure of a lease gets a generation, which
-- grows whenever the lease passes to another holder or is taken again after
-- it expired or was released. A cleanup run remembers the generation it
-- took and every destructive step checks, in its own transaction and under
-- a share lock of the lease row, that it is still current, so a run that
-- stalled past its lease cannot delete from a stale plan while another run
-- holds the lease. Existing rows start at 0. The version is sqlite's.
-- (Version 00006 is the tus upload state of issue 10.)

-- +goose Up
ALTER TABLE leases ADD COLUMN generation bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE leases DROP COLUMN generation;
