-- Who wrote a message, and whether the edge kept it back (issue #12): the
-- WebSocket edge answers some client requests itself (a batch too large, a
-- denied method, a rate limit) and sends upstreams messages of its own.
-- - origin is the event's Origin number: 0 unspecified (older edges: as
--   the direction says), 1 client, 2 upstream, 3 edge.
-- - absorbed_by_edge: the edge recorded the message and did not forward
--   it, by design. It never crossed, whatever the stream's close says, and
--   is not in the usage rollups; its answer (origin 3) crossed to the
--   client and is, with 0 relays.
-- Constant defaults: adding the columns rewrites no row.

-- +goose Up
ALTER TABLE messages
    ADD COLUMN origin smallint NOT NULL DEFAULT 0,
    ADD COLUMN absorbed_by_edge boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE messages DROP COLUMN absorbed_by_edge, DROP COLUMN origin;
