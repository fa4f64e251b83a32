-- Settlement: session windows from a chain source, settled sessions, and a
-- double-entry ledger of what applications pay and suppliers are paid.
-- - settlement_config: the chain source and window parameters, stored at
--   the first start; a meter configured otherwise refuses to start
--   (windows cannot change under settled history).
-- - chain_sessions: one row per session window, written once (ends_at set
--   once, NULL -> value, when the block after the window is known). Every
--   reader assigns relays to windows by time through it.
-- - settlement_state: one row, the settler's lock and how far it settled.
--   The meter's batches take it FOR SHARE, the settler FOR UPDATE, so a
--   relay of a window committed after the window settled is always seen
--   as late (a late_relay finding, settled in a later adjustment).
-- - consumer_offsets.clock: each partition's clock (the latest observation
--   metered, or the wall clock once caught up), moved with its offset; a
--   window settles once every partition's clock passed it.
-- - service_fees: a service's take rate over time, append-only like tariffs.
-- - sessions: one row per settled (session id, supplier).
-- - accounts, ledger_transactions, ledger_entries: the ledger. Entries of a
--   transaction sum to zero per currency (checked at commit); nothing is
--   ever updated or deleted; each transaction carries the hash of the one
--   before it.
-- - findings.transaction_id: the adjustment that settled a late relay.

-- +goose Up
CREATE TABLE settlement_config (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    source          text NOT NULL CHECK (source IN ('clock', 'cometbft')),
    url             text NOT NULL DEFAULT '',            -- cometbft; not part of the identity
    chain_id        text NOT NULL DEFAULT '',            -- cometbft: the node's network
    genesis         timestamptz,                         -- clock
    block_time      interval NOT NULL,                   -- clock: exact; cometbft: nominal
    session_blocks  integer NOT NULL CHECK (session_blocks > 0),
    grace_blocks    integer NOT NULL CHECK (grace_blocks >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_sessions (
    start_height    bigint PRIMARY KEY CHECK (start_height > 0),
    end_height      bigint NOT NULL CHECK (end_height >= start_height),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz CHECK (ends_at > starts_at),  -- time of block end_height + 1
    start_hash      bytea NOT NULL
);
CREATE INDEX chain_sessions_starts_at ON chain_sessions (starts_at);

-- +goose StatementBegin
CREATE FUNCTION chain_sessions_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.ends_at IS NULL AND NEW.ends_at IS NOT NULL
        AND NEW.start_height = OLD.start_height AND NEW.end_height = OLD.end_height
        AND NEW.starts_at = OLD.starts_at AND NEW.start_hash = OLD.start_hash THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'chain_sessions rows are written once (ends_at only from NULL to a time)';
END $$;
-- +goose StatementEnd
CREATE TRIGGER chain_sessions_write_once BEFORE UPDATE OR DELETE ON chain_sessions
    FOR EACH ROW EXECUTE FUNCTION chain_sessions_write_once();

CREATE TABLE settlement_state (
    singleton               boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    settled_through_height  bigint NOT NULL DEFAULT 0,
    -- ends_at of the last settled window: a relay before it is late.
    settled_until           timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO settlement_state DEFAULT VALUES;

ALTER TABLE consumer_offsets ADD COLUMN clock timestamptz;

CREATE TABLE service_fees (
    service         text NOT NULL REFERENCES services ON DELETE CASCADE,
    fee_bps         integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    effective_from  timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, effective_from)
);
CREATE TRIGGER service_fees_append_only BEFORE UPDATE OR DELETE ON service_fees
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE TABLE sessions (
    id              text PRIMARY KEY,      -- hex(sha256(session_id ‖ 0x00 ‖ supplier))
    session_id      text NOT NULL,         -- Pocket Network's session id
    application     text NOT NULL,
    service         text NOT NULL,
    supplier        text NOT NULL,
    start_height    bigint NOT NULL REFERENCES chain_sessions,
    end_height      bigint NOT NULL,
    relays          bigint NOT NULL CHECK (relays >= 0),
    units           bigint NOT NULL CHECK (units >= 0),
    amount          numeric(38, 18) NOT NULL,   -- units × price: what the application pays
    currency        text NOT NULL,              -- '' when the service had no tariff
    settled_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, supplier)
);
CREATE INDEX sessions_start ON sessions (start_height, application, service, supplier);
CREATE INDEX sessions_application ON sessions (application, start_height);
CREATE INDEX sessions_supplier ON sessions (supplier, start_height);

CREATE TABLE accounts (
    id          text PRIMARY KEY,             -- kind:owner:currency
    kind        text NOT NULL CHECK (kind IN ('application', 'supplier', 'fees')),
    owner       text NOT NULL,                -- application, supplier, or the service for fees
    currency    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, owner, currency)
);

CREATE TABLE ledger_transactions (
    seq         bigint PRIMARY KEY CHECK (seq > 0),   -- gapless, assigned under the settlement lock
    id          text NOT NULL UNIQUE,                 -- hex(sha256(session_id ‖ 0 ‖ supplier ‖ 0 ‖ kind))
    kind        text NOT NULL CHECK (kind IN ('settlement', 'adjustment', 'reversal')),
    session     text REFERENCES sessions,
    reverses    text REFERENCES ledger_transactions (id),
    posted_at   timestamptz NOT NULL,
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX ledger_transactions_session ON ledger_transactions (session);
CREATE INDEX ledger_transactions_posted_at ON ledger_transactions (posted_at);

CREATE TABLE ledger_entries (
    transaction_seq bigint NOT NULL REFERENCES ledger_transactions (seq),
    account         text NOT NULL REFERENCES accounts,
    amount          numeric(38, 18) NOT NULL CHECK (amount <> 0),   -- debit < 0, credit > 0
    PRIMARY KEY (transaction_seq, account)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account, transaction_seq);

-- +goose StatementBegin
CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT a.currency, sum(e.amount) AS total INTO bad
        FROM ledger_entries e JOIN accounts a ON a.id = e.account
        WHERE e.transaction_seq = NEW.transaction_seq
        GROUP BY a.currency HAVING sum(e.amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not sum to zero in %: %', NEW.transaction_seq, bad.currency, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entries_balanced();

CREATE TRIGGER sessions_append_only BEFORE UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER accounts_append_only BEFORE UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

ALTER TABLE findings ADD COLUMN transaction_id text REFERENCES ledger_transactions (id);
-- The settler reads the late relays not settled yet.
CREATE INDEX findings_unsettled ON findings (kind)
    WHERE resolved_at IS NULL AND kind IN ('late_relay', 'uncrossed_after_settlement');

-- +goose Down
DROP INDEX findings_unsettled;
ALTER TABLE findings DROP COLUMN transaction_id;
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE accounts;
DROP TABLE sessions;
DROP FUNCTION ledger_entries_balanced();
DROP TABLE service_fees;
ALTER TABLE consumer_offsets DROP COLUMN clock;
DROP TABLE settlement_state;
DROP TABLE chain_sessions;
DROP FUNCTION chain_sessions_write_once();
DROP TABLE settlement_config;
