-- The metering schema: what the meter derives from relaymeter.messages.v1.
-- Every table here but services can be rebuilt by replaying the topic.

-- +goose Up
CREATE TABLE services (
    id                      text PRIMARY KEY,
    protocol                text NOT NULL,            -- WEBSOCKET_JSONRPC | STRATUM_V2 | BEAM
    policy                  text NOT NULL DEFAULT 'message',
    policy_version          integer NOT NULL DEFAULT 1,
    policy_params           jsonb NOT NULL DEFAULT '{}',
    price_per_unit          numeric(38, 18) NOT NULL DEFAULT 0,
    compute_units_per_relay bigint NOT NULL DEFAULT 1 CHECK (compute_units_per_relay > 0),
    session_seconds         integer NOT NULL DEFAULT 3600 CHECK (session_seconds > 0),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- One row per stream (client connection): its identity, the meter's state
-- for it (last seq and chain, pairing, policy carry) and what was metered.
CREATE TABLE streams (
    stream_id            uuid PRIMARY KEY,
    topic                text NOT NULL,
    kafka_partition      integer NOT NULL,
    protocol             text NOT NULL,
    service              text NOT NULL,
    application          text NOT NULL,
    supplier             text NOT NULL,
    edge_id              text NOT NULL,
    client_addr          text NOT NULL DEFAULT '',
    upstream_addr        text NOT NULL DEFAULT '',
    policy               text NOT NULL,
    policy_version       integer NOT NULL,
    compute_units        bigint NOT NULL,              -- weight of each relay
    opened_at            timestamptz NOT NULL,
    closed_at            timestamptz,
    close_reason         text,
    close_code           integer,
    last_seq             bigint NOT NULL,
    chain                bytea NOT NULL,
    -- What the meter counted, per direction (wire bytes).
    messages_to_upstream bigint NOT NULL DEFAULT 0,
    bytes_to_upstream    bigint NOT NULL DEFAULT 0,
    messages_to_client   bigint NOT NULL DEFAULT 0,
    bytes_to_client      bigint NOT NULL DEFAULT 0,
    relays               bigint NOT NULL DEFAULT 0,
    units                bigint NOT NULL DEFAULT 0,
    duplicates           bigint NOT NULL DEFAULT 0,    -- duplicate events dropped
    -- Pairing: the latest request (client→upstream) and response
    -- (upstream→client) seen; NULL until the first of each.
    last_request_seq     bigint,
    last_response_seq    bigint,
    -- The policy's carry across messages (e.g. a partial delimited record).
    policy_state         bytea,
    -- At close: whether the closed event's counts equal what was metered.
    complete             boolean
);
CREATE INDEX streams_opened_at ON streams (opened_at DESC, stream_id);
CREATE INDEX streams_application ON streams (application, opened_at DESC);

-- One row per Message event.
CREATE TABLE messages (
    stream_id       uuid NOT NULL,
    seq             bigint NOT NULL,
    observed_at     timestamptz NOT NULL,
    direction       text NOT NULL,                     -- CLIENT_TO_UPSTREAM | UPSTREAM_TO_CLIENT
    role            text NOT NULL,                     -- REQUEST | RESPONSE | NOTIFICATION | ERROR | OTHER
    method          text NOT NULL DEFAULT '',
    batch_size      integer NOT NULL DEFAULT 0,
    rpc_id          text NOT NULL DEFAULT '',
    subscription_id text NOT NULL DEFAULT '',
    wire_size       bigint NOT NULL,
    payload_size    bigint NOT NULL,
    units           bigint NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

-- One row per relay: a unit of work of uniform weight, pairing a request
-- with a response of its stream. A relay whose counterpart has not arrived
-- has NULL there; at stream close such relays are marked unpaired.
CREATE TABLE relays (
    id              bigserial UNIQUE,                  -- cursor order
    relay_id        bytea PRIMARY KEY,                 -- sha256(stream_id ‖ seq ‖ unit_index)
    stream_id       uuid NOT NULL,
    seq             bigint NOT NULL,                   -- the message that yielded it
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
    observed_at     timestamptz NOT NULL
);
CREATE INDEX relays_stream ON relays (stream_id, seq);
CREATE INDEX relays_observed_at ON relays (observed_at);

-- Per-minute rollups: what usage queries read.
CREATE TABLE usage_minutes (
    minute      timestamptz NOT NULL,
    protocol    text NOT NULL,
    service     text NOT NULL,
    application text NOT NULL,
    supplier    text NOT NULL,
    messages    bigint NOT NULL DEFAULT 0,
    relays      bigint NOT NULL DEFAULT 0,
    units       bigint NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, service, application, supplier, protocol)
);

-- The next Kafka offset to read, per consumer group and partition, moved in
-- the same transaction as the effects of the records before it.
CREATE TABLE consumer_offsets (
    group_id        text NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, kafka_partition)
);

-- What the meter noticed and did not paper over: gaps in seq, broken
-- chains, counts at close that differ from what was metered, events for
-- unknown streams or services, undecodable records.
CREATE TABLE findings (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    stream_id   uuid,
    seq         bigint,
    topic       text,
    kafka_partition integer,
    kafka_offset bigint,
    detail      text NOT NULL,
    observed_at timestamptz,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX findings_stream ON findings (stream_id, seq);

-- +goose Down
DROP TABLE findings;
DROP TABLE consumer_offsets;
DROP TABLE usage_minutes;
DROP TABLE relays;
DROP TABLE messages;
DROP TABLE streams;
DROP TABLE services;
