package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	ID       string
	Protocol string
	// Policy is the version in force now; for PutService, the one to put.
	Policy               Policy
	ComputeUnitsPerRelay int64
	SessionSeconds       int32
	// History is every policy version of the service, oldest first
	// (read only: PutService ignores it).
	History []ServicePolicy
}

// ServicePolicy is one policy version of a service and when it took
// effect: streams opened from then on are priced with it.
type ServicePolicy struct {
	Policy Policy
	// EffectiveFrom is when the version took effect; not Valid for the
	// service's first version, in force since ever.
	EffectiveFrom sql.Null[time.Time]
}

// InForce returns the version of h (oldest first) in force at t, and
// false if none is.
func InForce(h []ServicePolicy, t time.Time) (Policy, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].EffectiveFrom.Valid || !h[i].EffectiveFrom.V.After(t) {
			return h[i].Policy, true
		}
	}
	return Policy{}, false
}

// historyColumns and historyFrom read service_policies rows as
// ServicePolicy values.
const (
	historyColumns = `p.id, p.name, p.version, p.params,
		CASE WHEN sp.effective_from = '-infinity' THEN NULL ELSE sp.effective_from END`
	historyFrom = ` FROM service_policies sp JOIN policies p ON p.id = sp.policy_id`
)

// ServiceHistory returns the policy versions of service id, oldest first.
func (s *Store) ServiceHistory(ctx context.Context, id string) ([]ServicePolicy, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+historyColumns+historyFrom+` WHERE sp.service = $1 ORDER BY sp.effective_from`, id)
	if err != nil {
		return nil, fmt.Errorf("ledger: service history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServicePolicy, error) {
		var sp ServicePolicy
		err := row.Scan(&sp.Policy.ID, &sp.Policy.Name, &sp.Policy.Version, &sp.Policy.Params, &sp.EffectiveFrom)
		return sp, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: service history: %w", err)
	}
	return out, nil
}

// ErrChangeTooSoon reports a second change of a service's policy within
// one minute: changes take effect at the next minute boundary, and one is
// already waiting for it.
var ErrChangeTooSoon = errors.New("ledger: the service's policy already changes at the next minute; change it again after that")

// Services returns every configured service with its policy history and
// the version in force now, and the database's clock when it read them:
// every change made later takes effect at a minute boundary after it.
func (s *Store) Services(ctx context.Context) ([]Service, time.Time, error) {
	var now time.Time
	byID := map[string]*Service{}
	var out []Service
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, protocol, compute_units_per_relay, session_seconds FROM services ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Service, error) {
			var v Service
			err := row.Scan(&v.ID, &v.Protocol, &v.ComputeUnitsPerRelay, &v.SessionSeconds)
			return v, err
		})
		if err != nil {
			return err
		}
		for i := range out {
			byID[out[i].ID] = &out[i]
		}
		rows, err = tx.Query(ctx, `SELECT sp.service, `+historyColumns+historyFrom+` ORDER BY sp.service, sp.effective_from`)
		if err != nil {
			return err
		}
		var svc string
		var sp ServicePolicy
		_, err = pgx.ForEachRow(rows, []any{&svc, &sp.Policy.ID, &sp.Policy.Name, &sp.Policy.Version, &sp.Policy.Params, &sp.EffectiveFrom}, func() error {
			if v := byID[svc]; v != nil {
				v.History = append(v.History, sp)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ledger: read services: %w", err)
	}
	for i := range out {
		out[i].Policy, _ = InForce(out[i].History, now)
	}
	return out, now, nil
}

// PutService inserts or updates a service's metering configuration,
// storing its policy version when new. Zero fields take the defaults:
// policy message v1, no parameters, weight 1, one-hour sessions.
//
// A policy version (name, version and parameters) other than the
// service's latest becomes a new version of the service, in force from the
// next minute boundary (from ever, for a new service): streams opened
// before keep theirs. A second change within that minute is
// ErrChangeTooSoon.
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
		id, err := putPolicy(ctx, tx, v.Policy)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `INSERT INTO services (id, protocol, compute_units_per_relay, session_seconds)
				VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol,
				compute_units_per_relay = EXCLUDED.compute_units_per_relay,
				session_seconds = EXCLUDED.session_seconds, updated_at = now()
			WHERE (services.protocol, services.compute_units_per_relay, services.session_seconds)
				IS DISTINCT FROM (EXCLUDED.protocol, EXCLUDED.compute_units_per_relay, EXCLUDED.session_seconds)`,
			v.ID, v.Protocol, v.ComputeUnitsPerRelay, v.SessionSeconds); err != nil {
			return err
		}
		// The latest version, in force or waiting for its minute; the
		// row lock keeps two writers from both adding one.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM services WHERE id = $1 FOR UPDATE`, v.ID); err != nil {
			return err
		}
		var latest int64
		var waiting bool
		err = tx.QueryRow(ctx, `SELECT policy_id, effective_from > now() FROM service_policies
			WHERE service = $1 ORDER BY effective_from DESC LIMIT 1`, v.ID).Scan(&latest, &waiting)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO service_policies (service, policy_id, effective_from) VALUES ($1, $2, '-infinity')`, v.ID, id)
			return err
		case err != nil:
			return err
		case latest == id:
			return nil
		case waiting:
			return ErrChangeTooSoon
		}
		_, err = tx.Exec(ctx, `INSERT INTO service_policies (service, policy_id, effective_from)
			VALUES ($1, $2, date_trunc('minute', now()) + interval '1 minute')`, v.ID, id)
		return err
	})
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

// ErrNoService is a service id that is not configured.
var ErrNoService = errors.New("ledger: no such service")

// SetServicePolicy gives service id the policy version p, keeping the
// rest of its configuration, as PutService does: from the next minute on
// for streams opened then.
func (s *Store) SetServicePolicy(ctx context.Context, id string, p Policy) error {
	v := Service{ID: id, Policy: p}
	err := s.pool.QueryRow(ctx, `SELECT protocol, compute_units_per_relay, session_seconds FROM services WHERE id = $1`, id).
		Scan(&v.Protocol, &v.ComputeUnitsPerRelay, &v.SessionSeconds)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("ledger: set policy of %s: %w", id, ErrNoService)
	}
	if err != nil {
		return fmt.Errorf("ledger: set policy of %s: %w", id, err)
	}
	return s.PutService(ctx, v)
}
