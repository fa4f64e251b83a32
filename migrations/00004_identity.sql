-- Identity: who pays (applications), who is paid (suppliers), and the API
-- keys that stand for them at the edges and the API. A key's secret is
-- shown once, at creation; only its sha256 is kept.
-- Streams record the id of the key that opened them ('' where the edge runs with
-- open access and the path names the application).

-- +goose Up
CREATE TABLE applications (
    id          text PRIMARY KEY,                     -- app_ + 16 hex digits
    name        text NOT NULL CHECK (name <> ''),
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE suppliers (
    id          text PRIMARY KEY,                     -- sup_ + 16 hex digits
    name        text NOT NULL CHECK (name <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,                   -- key_ + 16 hex digits
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    role          text NOT NULL CHECK (role IN ('admin', 'application', 'supplier')),
    application   text REFERENCES applications,
    supplier      text REFERENCES suppliers,
    name          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- An application key has an application and only that, a supplier key
    -- a supplier, an admin key neither.
    CHECK ((role = 'application') = (application IS NOT NULL)),
    CHECK ((role = 'supplier') = (supplier IS NOT NULL))
);
CREATE INDEX api_keys_application ON api_keys (application) WHERE application IS NOT NULL;
CREATE INDEX api_keys_supplier ON api_keys (supplier) WHERE supplier IS NOT NULL;

ALTER TABLE streams ADD COLUMN api_key_id text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE streams DROP COLUMN api_key_id;
DROP TABLE api_keys;
DROP TABLE suppliers;
DROP TABLE applications;
