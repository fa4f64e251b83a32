-- The API's reads of the ledger (graphql: accounts, balance).
-- - A balance is the sum of an account's entries: with the amount in the
--   index, it is an index-only scan (the entries are append-only, so their
--   pages stay all-visible once vacuumed) instead of a heap fetch per
--   entry. The index replaces 00008's ledger_entries_account, whose key it
--   keeps.

-- +goose Up
CREATE INDEX ledger_entries_account_amount ON ledger_entries (account, transaction_seq) INCLUDE (amount);
DROP INDEX ledger_entries_account;

-- +goose Down
CREATE INDEX ledger_entries_account ON ledger_entries (account, transaction_seq);
DROP INDEX ledger_entries_account_amount;
