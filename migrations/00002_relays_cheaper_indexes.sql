-- Cheaper relay indexes. Each relay row paid for five B-tree entries: the
-- random sha256 relay_id primary key (an insert anywhere in the tree), the
-- id cursor, relays_stream and relays_observed_at. Now:
-- - relays are unique by (stream_id, seq, unit_index), inserted in order
--   within a stream; relay_id is sha256 of exactly that triple (meter.RelayID),
--   so its uniqueness follows and it stays a plain NOT NULL column;
-- - the primary key serves what relays_stream served (a stream's relays,
--   pairing fills, unpaired marks), so that index goes;
-- - observed_at follows insertion order, so a BRIN index serves time-range
--   filters at a fraction of a B-tree's cost per insert.
-- The id cursor (bigserial UNIQUE) stays: ListRelays walks it.
-- On a large relays table, adding the primary key scans and sorts it under
-- an exclusive lock: run this migration in a maintenance window.

-- +goose Up
ALTER TABLE relays DROP CONSTRAINT relays_pkey;
ALTER TABLE relays ALTER COLUMN relay_id SET NOT NULL;
ALTER TABLE relays ADD CONSTRAINT relays_pkey PRIMARY KEY (stream_id, seq, unit_index);
DROP INDEX relays_stream;
DROP INDEX relays_observed_at;
CREATE INDEX relays_observed_at ON relays USING brin (observed_at);

-- +goose Down
DROP INDEX relays_observed_at;
CREATE INDEX relays_observed_at ON relays (observed_at);
CREATE INDEX relays_stream ON relays (stream_id, seq);
ALTER TABLE relays DROP CONSTRAINT relays_pkey;
ALTER TABLE relays ADD CONSTRAINT relays_pkey PRIMARY KEY (relay_id);
