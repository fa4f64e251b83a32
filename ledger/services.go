package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Policy is a policies row: one pricing version, immutable once stored. A
// service points at its current one; a stream at the one it was opened
// with, for its whole life.
type Policy struct {
	ID      int64
	Name    string // the registered policy
	Version int32  // the version of its rule
	Params  json.RawMessage
}

// Service is a metered service's configuration as the meter needs it.
type Service struct {
	ID                   string
	Protocol             string
	Policy               Policy
	ComputeUnitsPerRelay int64
	SessionSeconds       int32
}

// ParamsChangedError reports a service configured with new parameters for
// the policy version its streams are priced with: a stream keeps the
// parameters it started with, so a change of parameters needs a new
// version.
type ParamsChangedError struct {
	Service, Policy string
	Version         int32
	Stored, Given   json.RawMessage
}

func (e *ParamsChangedError) Error() string {
	return fmt.Sprintf("ledger: service %s: the parameters of policy %s v%d changed from %s to %s without a version bump; "+
		"streams priced with v%d keep its parameters, so give the new parameters a new policy_version",
		e.Service, e.Policy, e.Version, e.Stored, e.Given, e.Version)
}

const serviceColumns = `s.id, s.protocol, p.id, p.name, p.version, p.params, s.compute_units_per_relay, s.session_seconds`

// Services returns every configured service with its current policy.
func (s *Store) Services(ctx context.Context) ([]Service, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+serviceColumns+` FROM services s JOIN policies p ON p.id = s.policy_id ORDER BY s.id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: read services: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Service, error) {
		var v Service
		err := row.Scan(&v.ID, &v.Protocol, &v.Policy.ID, &v.Policy.Name, &v.Policy.Version, &v.Policy.Params,
			&v.ComputeUnitsPerRelay, &v.SessionSeconds)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read services: %w", err)
	}
	return out, nil
}

// PutService inserts or updates a service's metering configuration (its
// price is left as it is, 0 for a new service), storing its policy version
// when new. Zero fields take the defaults: policy message v1, no
// parameters, weight 1, one-hour sessions. Parameters that differ from the
// ones stored for the service's current policy name and version are a
// *ParamsChangedError, and nothing is written.
func (s *Store) PutService(ctx context.Context, v Service) error {
	if v.Policy.Name == "" {
		v.Policy.Name = "message"
	}
	if v.Policy.Version == 0 {
		v.Policy.Version = 1
	}
	if len(bytes.TrimSpace(v.Policy.Params)) == 0 || bytes.Equal(bytes.TrimSpace(v.Policy.Params), []byte("null")) {
		v.Policy.Params = json.RawMessage(`{}`)
	}
	if v.ComputeUnitsPerRelay == 0 {
		v.ComputeUnitsPerRelay = 1
	}
	if v.SessionSeconds == 0 {
		v.SessionSeconds = 3600
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var stored json.RawMessage
		var same bool
		err := tx.QueryRow(ctx, `SELECT p.params, p.params = $4::jsonb FROM services s JOIN policies p ON p.id = s.policy_id
			WHERE s.id = $1 AND p.name = $2 AND p.version = $3`, v.ID, v.Policy.Name, v.Policy.Version,
			string(v.Policy.Params)).Scan(&stored, &same)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case !same:
			return &ParamsChangedError{Service: v.ID, Policy: v.Policy.Name, Version: v.Policy.Version,
				Stored: stored, Given: v.Policy.Params}
		}
		id, err := putPolicy(ctx, tx, v.Policy)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO services (id, protocol, policy_id, compute_units_per_relay, session_seconds)
				VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol, policy_id = EXCLUDED.policy_id,
				compute_units_per_relay = EXCLUDED.compute_units_per_relay,
				session_seconds = EXCLUDED.session_seconds, updated_at = now()
			WHERE (services.protocol, services.policy_id, services.compute_units_per_relay, services.session_seconds)
				IS DISTINCT FROM (EXCLUDED.protocol, EXCLUDED.policy_id, EXCLUDED.compute_units_per_relay,
				EXCLUDED.session_seconds)`,
			v.ID, v.Protocol, id, v.ComputeUnitsPerRelay, v.SessionSeconds)
		return err
	})
	var pce *ParamsChangedError
	if errors.As(err, &pce) {
		return err
	}
	if err != nil {
		return fmt.Errorf("ledger: put service %s: %w", v.ID, err)
	}
	return nil
}

// putPolicy returns the id of the policies row of p, storing it first when
// new.
func putPolicy(ctx context.Context, tx pgx.Tx, p Policy) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO policies (name, version, params) VALUES ($1, $2, $3::jsonb)
			ON CONFLICT (name, version, md5(params::text)) DO NOTHING RETURNING id)
		SELECT id FROM ins UNION ALL
		SELECT id FROM policies WHERE name = $1 AND version = $2 AND md5(params::text) = md5($3::jsonb::text)
		LIMIT 1`, p.Name, p.Version, string(p.Params)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another process stored the same row after this statement's
		// snapshot was taken: it is there now.
		err = tx.QueryRow(ctx, `SELECT id FROM policies WHERE name = $1 AND version = $2
			AND md5(params::text) = md5($3::jsonb::text)`, p.Name, p.Version, string(p.Params)).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: policy %s v%d: %w", p.Name, p.Version, err)
	}
	return id, nil
}

// Policy returns the policies row id; rows are immutable, so each is read
// once per Store.
func (s *Store) Policy(ctx context.Context, id int64) (Policy, error) {
	if p, ok := s.policies.Load(id); ok {
		return p.(Policy), nil
	}
	p := Policy{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT name, version, params FROM policies WHERE id = $1`, id).
		Scan(&p.Name, &p.Version, &p.Params)
	if err != nil {
		return Policy{}, fmt.Errorf("ledger: policy %d: %w", id, err)
	}
	s.policies.Store(id, p)
	return p, nil
}

// PolicyID returns the id of the policies row of p (name, version and
// parameters), storing it first when new.
func (s *Store) PolicyID(ctx context.Context, p Policy) (int64, error) {
	if len(bytes.TrimSpace(p.Params)) == 0 {
		p.Params = json.RawMessage(`{}`)
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		id, err = putPolicy(ctx, tx, p)
		return err
	})
	return id, err
}
