-- Event log retention trims by age (TrimEvents); without an index on time
-- every hourly trim would scan the whole log.

-- +goose Up
CREATE INDEX events_time ON events (time);

-- +goose Down
DROP INDEX events_time;
