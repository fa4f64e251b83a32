-- Audit: what `relaymeter audit` found when it recomputed the ledger from
-- the events log.
-- - audit_runs: one row per run, with what it covered (the window and
--   filters, the partitions' offsets replayed), its counts and its result.
-- - audit_findings: one row per row of a derived table that the replay and
--   Postgres disagree on: missing (the replay has it, Postgres not), extra
--   (Postgres has it, the replay not) or differs, with the row's primary
--   key and both versions as JSON. Written by audit only; never changed.

-- +goose Up
CREATE TABLE audit_runs (
    id              bigserial PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    topic           text NOT NULL,
    -- The filters: a NULL bound or '' name is no filter.
    window_from     timestamptz,
    window_to       timestamptz,
    application     text NOT NULL DEFAULT '',
    service         text NOT NULL DEFAULT '',
    -- Per partition the offsets replayed, [first, end): {"0": [0, 1234], …}.
    offsets         jsonb NOT NULL DEFAULT '{}',
    events          bigint NOT NULL DEFAULT 0,
    -- Rows compared per table: {"messages": 1200, …}.
    compared        jsonb NOT NULL DEFAULT '{}',
    missing         bigint NOT NULL DEFAULT 0,
    extra           bigint NOT NULL DEFAULT 0,
    differs         bigint NOT NULL DEFAULT 0,
    result          text NOT NULL DEFAULT 'running'
                    CHECK (result IN ('running', 'match', 'differs', 'failed')),
    error           text NOT NULL DEFAULT ''
);

CREATE TABLE audit_findings (
    id              bigserial PRIMARY KEY,
    run_id          bigint NOT NULL REFERENCES audit_runs ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('missing', 'extra', 'differs')),
    table_name      text NOT NULL,
    keys            jsonb NOT NULL,
    expected        jsonb,          -- the replay's row; NULL when extra
    found           jsonb,          -- Postgres's row; NULL when missing
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_findings_run ON audit_findings (run_id, id);

-- +goose Down
DROP TABLE audit_findings;
DROP TABLE audit_runs;
