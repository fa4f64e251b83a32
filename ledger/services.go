package ledger

import (
	"context"
	"encoding/json"
	"fmt"
)

// Service is a metered service's configuration as the meter needs it.
type Service struct {
	ID                   string
	Protocol             string
	Policy               string
	PolicyVersion        int
	PolicyParams         json.RawMessage
	ComputeUnitsPerRelay int64
	SessionSeconds       int
}

// Services returns every configured service.
func (s *Store) Services(ctx context.Context) ([]Service, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, protocol, policy, policy_version, policy_params,
		compute_units_per_relay, session_seconds FROM services ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: read services: %w", err)
	}
	defer rows.Close()
	var out []Service
	for rows.Next() {
		var v Service
		var params []byte
		if err := rows.Scan(&v.ID, &v.Protocol, &v.Policy, &v.PolicyVersion, &params, &v.ComputeUnitsPerRelay, &v.SessionSeconds); err != nil {
			return nil, fmt.Errorf("ledger: read services: %w", err)
		}
		v.PolicyParams = params
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read services: %w", err)
	}
	return out, nil
}

// PutService inserts or updates a service's metering configuration (its
// price is left as it is, 0 for a new service). Zero fields take the
// schema's defaults: policy message v1, no parameters, weight 1, one-hour
// sessions.
func (s *Store) PutService(ctx context.Context, v Service) error {
	if v.Policy == "" {
		v.Policy = "message"
	}
	if v.PolicyVersion == 0 {
		v.PolicyVersion = 1
	}
	if len(v.PolicyParams) == 0 {
		v.PolicyParams = json.RawMessage(`{}`)
	}
	if v.ComputeUnitsPerRelay == 0 {
		v.ComputeUnitsPerRelay = 1
	}
	if v.SessionSeconds == 0 {
		v.SessionSeconds = 3600
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO services (id, protocol, policy, policy_version, policy_params,
			compute_units_per_relay, session_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol, policy = EXCLUDED.policy,
			policy_version = EXCLUDED.policy_version, policy_params = EXCLUDED.policy_params,
			compute_units_per_relay = EXCLUDED.compute_units_per_relay,
			session_seconds = EXCLUDED.session_seconds, updated_at = now()`,
		v.ID, v.Protocol, v.Policy, v.PolicyVersion, string(v.PolicyParams), v.ComputeUnitsPerRelay, v.SessionSeconds)
	if err != nil {
		return fmt.Errorf("ledger: put service %s: %w", v.ID, err)
	}
	return nil
}
