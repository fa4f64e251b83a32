-- One row per fact. The relays table goes: a relay is unit i of a message
-- (i < messages.units), its weight and policy are its stream's, its id is
-- sha256(stream_id ‖ seq ‖ i), and its counterpart is the message's, so a
-- relay is derived from its message on read instead of being written again
-- (two rows and three index entries per message become one row and two).
-- Relays are listed in primary key order (stream, seq, unit): the relays
-- id column and its index go, the costliest part of writing a row (every
-- partition's inserts met at its rightmost page).
-- What else changes:
-- - messages: direction and role are the event's enum numbers (smallint);
--   counterpart_seq is the latest message of the other side when this one
--   was metered, NULL when none had been seen yet: such messages take the
--   stream's first_counterpart_seq, written once, instead of being updated.
-- - policies: a pricing version (policy name, implementation version,
--   parameters) is an immutable row; a service points at its current one
--   and a stream at the one it was opened with, so a stream keeps its
--   parameters for its whole life.
-- - streams: the meter's state columns (state_version, gaps, last observed
--   time, first counterpart) and what crossed the edge at close; the units
--   column goes (it is relays × compute_units).
-- - findings can be resolved (a late event filled a gap).
-- - quarantine keeps whole the records the meter set aside.

-- +goose Up
CREATE TABLE policies (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    params      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX policies_identity ON policies (name, version, md5(params::text));

-- +goose StatementBegin
CREATE FUNCTION policies_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policies are immutable: a new version is a new row';
END $$;
-- +goose StatementEnd
CREATE TRIGGER policies_immutable BEFORE UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION policies_immutable();

INSERT INTO policies (name, version, params)
    SELECT DISTINCT policy, policy_version, policy_params FROM services
    UNION SELECT DISTINCT policy, policy_version, '{}'::jsonb FROM streams;

ALTER TABLE services ADD COLUMN policy_id bigint REFERENCES policies;
UPDATE services s SET policy_id = p.id FROM policies p
    WHERE p.name = s.policy AND p.version = s.policy_version AND p.params = s.policy_params;
ALTER TABLE services ALTER COLUMN policy_id SET NOT NULL;
ALTER TABLE services DROP COLUMN policy, DROP COLUMN policy_version, DROP COLUMN policy_params;

-- streams
ALTER TABLE streams
    ADD COLUMN policy_id bigint REFERENCES policies,
    ADD COLUMN state_version bigint NOT NULL DEFAULT 1,
    ADD COLUMN last_observed_at timestamptz,
    ADD COLUMN first_counterpart_seq bigint,
    ADD COLUMN gaps bytea NOT NULL DEFAULT '',
    ADD COLUMN forwarded_to_upstream_seq bigint,
    ADD COLUMN forwarded_to_client_seq bigint;
-- A stream's policy: the parameters its service had, when it is the
-- service's policy still, else none.
UPDATE streams st SET policy_id = coalesce(
    (SELECT p.id FROM services sv JOIN policies p ON p.id = sv.policy_id
        WHERE sv.id = st.service AND p.name = st.policy AND p.version = st.policy_version),
    (SELECT p.id FROM policies p WHERE p.name = st.policy AND p.version = st.policy_version AND p.params = '{}'));
UPDATE streams st SET last_observed_at = coalesce(
    (SELECT max(observed_at) FROM messages m WHERE m.stream_id = st.stream_id), st.closed_at, st.opened_at);
ALTER TABLE streams ALTER COLUMN policy_id SET NOT NULL, ALTER COLUMN last_observed_at SET NOT NULL,
    ALTER COLUMN state_version DROP DEFAULT;
ALTER TABLE streams DROP COLUMN policy, DROP COLUMN policy_version, DROP COLUMN units;
-- No carry is an empty carry: one convention, no NULL.
UPDATE streams SET policy_state = '' WHERE policy_state IS NULL;
ALTER TABLE streams ALTER COLUMN policy_state SET DEFAULT '', ALTER COLUMN policy_state SET NOT NULL;
-- The meter preloads a partition's open streams.
CREATE INDEX streams_open ON streams (topic, kafka_partition) WHERE closed_at IS NULL;
-- Every batch rewrites the state of the streams it touched. None of those
-- columns is indexed, so the new version can stay on its page (a HOT
-- update, no index touched) when the page has room: measured with the
-- ledger's Commit benchmark, 23% of updates were HOT at the default
-- fillfactor, 54% at 50, 96% at 30, which saved about a quarter of
-- Postgres's time per message. Streams are few next to messages.
ALTER TABLE streams SET (fillfactor = 30);

-- messages
ALTER TABLE messages
    ADD COLUMN counterpart_seq bigint,
    ALTER COLUMN direction TYPE smallint USING CASE direction
        WHEN 'CLIENT_TO_UPSTREAM' THEN 1 WHEN 'UPSTREAM_TO_CLIENT' THEN 2 ELSE 0 END,
    ALTER COLUMN role TYPE smallint USING CASE role
        WHEN 'REQUEST' THEN 1 WHEN 'RESPONSE' THEN 2 WHEN 'NOTIFICATION' THEN 3 WHEN 'ERROR' THEN 4
        WHEN 'OTHER' THEN 5 ELSE 0 END;
UPDATE messages m SET counterpart_seq = CASE WHEN m.direction = 2 THEN r.request_seq ELSE r.response_seq END
    FROM relays r WHERE r.stream_id = m.stream_id AND r.seq = m.seq AND r.unit_index = 0;
CREATE INDEX messages_observed_at ON messages USING brin (observed_at);
-- The first message of the side that came second, which every message of
-- the first side metered before it pairs with.
UPDATE streams st SET first_counterpart_seq = (
    SELECT min(m.seq) FROM messages m WHERE m.stream_id = st.stream_id
        AND (m.direction = 2) <> ((SELECT f.direction FROM messages f WHERE f.stream_id = st.stream_id
            ORDER BY f.seq LIMIT 1) = 2))
    WHERE st.last_request_seq IS NOT NULL AND st.last_response_seq IS NOT NULL;

DROP TABLE relays;

-- findings
ALTER TABLE findings ADD COLUMN resolved_at timestamptz;

-- Records the meter could not meter, kept whole, with why.
CREATE TABLE quarantine (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    record_key      bytea,
    record_value    bytea,
    record_headers  jsonb NOT NULL DEFAULT '[]',
    record_time     timestamptz NOT NULL,
    error           text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);

-- +goose Down
DROP TABLE quarantine;
ALTER TABLE findings DROP COLUMN resolved_at;

CREATE TABLE relays (
    id              bigserial UNIQUE,
    relay_id        bytea NOT NULL,
    stream_id       uuid NOT NULL,
    seq             bigint NOT NULL,
    unit_index      integer NOT NULL,
    request_seq     bigint,
    response_seq    bigint,
    unpaired        boolean NOT NULL DEFAULT false,
    protocol        text NOT NULL,
    service         text NOT NULL,
    application     text NOT NULL,
    supplier        text NOT NULL,
    weight          bigint NOT NULL,
    policy          text NOT NULL,
    policy_version  integer NOT NULL,
    observed_at     timestamptz NOT NULL,
    PRIMARY KEY (stream_id, seq, unit_index)
);
CREATE INDEX relays_observed_at ON relays USING brin (observed_at);
INSERT INTO relays (relay_id, stream_id, seq, unit_index, request_seq, response_seq, unpaired,
        protocol, service, application, supplier, weight, policy, policy_version, observed_at)
    SELECT sha256(uuid_send(m.stream_id) || int8send(m.seq) || int4send(u.i::int)), m.stream_id, m.seq, u.i,
        CASE WHEN m.direction = 2 THEN coalesce(m.counterpart_seq, s.first_counterpart_seq) ELSE m.seq END,
        CASE WHEN m.direction = 2 THEN m.seq ELSE coalesce(m.counterpart_seq, s.first_counterpart_seq) END,
        s.closed_at IS NOT NULL AND coalesce(m.counterpart_seq, s.first_counterpart_seq) IS NULL,
        s.protocol, s.service, s.application, s.supplier, s.compute_units, p.name, p.version, m.observed_at
    FROM messages m JOIN streams s USING (stream_id) JOIN policies p ON p.id = s.policy_id,
        LATERAL generate_series(0, m.units - 1) AS u(i)
    ORDER BY m.observed_at, m.stream_id, m.seq, u.i;

DROP INDEX messages_observed_at;
ALTER TABLE messages DROP COLUMN counterpart_seq,
    ALTER COLUMN direction TYPE text USING CASE direction
        WHEN 1 THEN 'CLIENT_TO_UPSTREAM' WHEN 2 THEN 'UPSTREAM_TO_CLIENT' ELSE 'DIRECTION_UNSPECIFIED' END,
    ALTER COLUMN role TYPE text USING CASE role
        WHEN 1 THEN 'REQUEST' WHEN 2 THEN 'RESPONSE' WHEN 3 THEN 'NOTIFICATION' WHEN 4 THEN 'ERROR'
        WHEN 5 THEN 'OTHER' ELSE 'ROLE_UNSPECIFIED' END;

ALTER TABLE streams RESET (fillfactor);
ALTER TABLE streams ALTER COLUMN policy_state DROP NOT NULL, ALTER COLUMN policy_state DROP DEFAULT;
UPDATE streams SET policy_state = NULL WHERE policy_state = '';
DROP INDEX streams_open;
ALTER TABLE streams ADD COLUMN policy text, ADD COLUMN policy_version integer, ADD COLUMN units bigint NOT NULL DEFAULT 0;
UPDATE streams s SET policy = p.name, policy_version = p.version, units = s.relays * s.compute_units
    FROM policies p WHERE p.id = s.policy_id;
ALTER TABLE streams ALTER COLUMN policy SET NOT NULL, ALTER COLUMN policy_version SET NOT NULL;
ALTER TABLE streams DROP COLUMN policy_id, DROP COLUMN state_version, DROP COLUMN last_observed_at,
    DROP COLUMN first_counterpart_seq, DROP COLUMN gaps, DROP COLUMN forwarded_to_upstream_seq,
    DROP COLUMN forwarded_to_client_seq;

ALTER TABLE services ADD COLUMN policy text NOT NULL DEFAULT 'message',
    ADD COLUMN policy_version integer NOT NULL DEFAULT 1, ADD COLUMN policy_params jsonb NOT NULL DEFAULT '{}';
UPDATE services s SET policy = p.name, policy_version = p.version, policy_params = p.params
    FROM policies p WHERE p.id = s.policy_id;
ALTER TABLE services DROP COLUMN policy_id;
DROP TABLE policies;
DROP FUNCTION policies_immutable();
