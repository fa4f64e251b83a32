-- Policy versions and tariffs over time.
-- - service_policies: which policy version prices a service's streams,
--   from when. A stream is priced with the version in force at its
--   opening (observed time), for its whole life, so a change applies to
--   streams opened after it and a replay prices old streams as they were
--   priced. A service's current policy is its latest row in force, so
--   services.policy_id goes.
-- - tariffs: the price of a service's units, from when, per currency,
--   optionally per application (a negotiated price). Amounts are units
--   times the price in force at the minute the units were metered,
--   computed on read; services.price_per_unit goes (it was never settable).
-- Both are append-only: a change is a new row.

-- +goose Up
CREATE TABLE service_policies (
    service         text NOT NULL REFERENCES services ON DELETE CASCADE,
    policy_id       bigint NOT NULL REFERENCES policies,
    effective_from  timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, effective_from)
);
INSERT INTO service_policies (service, policy_id, effective_from)
    SELECT id, policy_id, '-infinity' FROM services;
CREATE TABLE tariffs (
    id              bigserial PRIMARY KEY,
    service         text NOT NULL REFERENCES services ON DELETE CASCADE,
    application     text NOT NULL DEFAULT '',    -- '' is the service's default price
    price_per_unit  numeric(38, 18) NOT NULL CHECK (price_per_unit >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Za-z0-9_.-]{1,16}$'),
    effective_from  timestamptz NOT NULL CHECK (effective_from = '-infinity' OR effective_from = date_trunc('minute', effective_from)),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service, application, effective_from)
);

-- A price set by hand in the old column becomes the service's first default
-- tariff, in the ISO 4217 code for "no currency".
INSERT INTO tariffs (service, price_per_unit, currency, effective_from)
    SELECT id, price_per_unit, 'XXX', '-infinity' FROM services WHERE price_per_unit > 0;
ALTER TABLE services DROP COLUMN policy_id, DROP COLUMN price_per_unit;


-- +goose StatementBegin
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: a change is a new row', TG_TABLE_NAME;
END $$;
-- +goose StatementEnd
CREATE TRIGGER service_policies_append_only BEFORE UPDATE ON service_policies
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER tariffs_append_only BEFORE UPDATE ON tariffs
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- +goose Down
ALTER TABLE services ADD COLUMN policy_id bigint REFERENCES policies,
    ADD COLUMN price_per_unit numeric(38, 18) NOT NULL DEFAULT 0;
UPDATE services s SET policy_id = (SELECT policy_id FROM service_policies sp
    WHERE sp.service = s.id ORDER BY effective_from DESC LIMIT 1),
    price_per_unit = coalesce((SELECT price_per_unit FROM tariffs t WHERE t.service = s.id AND t.application = ''
        AND t.effective_from <= now() ORDER BY t.effective_from DESC LIMIT 1), 0);
DROP TABLE tariffs;
ALTER TABLE services ALTER COLUMN policy_id SET NOT NULL;
DROP TABLE service_policies;
DROP FUNCTION append_only();
