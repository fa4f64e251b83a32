package meter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// pricing is how a stream is metered: its policy version and relay weight.
type pricing struct {
	policy   policy.Policy
	policyID int64 // the ledger's policies row
	weight   int64
	// problem, when not empty, is why the recorded policy could not be
	// built (the stream is metered with the message policy meanwhile).
	problem string
}

// units prices m with the stream's carry state, turning a policy's panic
// into an error: a policy someone plugged in must not stop a partition.
func (p pricing) units(s *policy.Stream, state []byte, m *event.Message) (units uint64, next []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			units, next, err = 0, nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return p.policy.Units(s, state, m)
}

// services caches the services table and the policies built from the
// ledger's policies rows. It is shared by the partitions of a Meter.
type services struct {
	store   Lookups
	refresh time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	loaded time.Time
	// exactUntil is the minute after the database's clock when the table
	// was read: no change made since takes effect before it.
	exactUntil time.Time
	// readAhead: the table was last read for a stream opened after
	// exactUntil; such reads happen at most once a second (a stream opened
	// that late by the database's clock comes from an edge whose clock is
	// ahead).
	readAhead bool
	byID      map[string]ledger.Service
	built     map[int64]pricing // by policies row, weight 1
	fallback  int64             // the policies row of message v1, no parameters
}

func newServices(store Lookups, refresh time.Duration, log *slog.Logger) *services {
	return &services{store: store, refresh: refresh, log: log, built: map[int64]pricing{}}
}

// lookup returns the policy version of service id in force at opened and
// the service's weight, and whether the service is configured.
//
// A change to a service takes effect at a minute boundary after it was
// made, so the table read at database time T answers exactly for every
// stream opened before the minute after T; the table is read again for a
// stream opened later (and then again at most once a second, in case an
// edge's clock runs ahead of the database's), and for a service missing
// from a table older than the refresh interval.
func (s *services) lookup(ctx context.Context, id string, opened time.Time) (ledger.Policy, int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	ahead := s.byID != nil && !opened.Before(s.exactUntil)
	stale := s.byID == nil || !ok && time.Since(s.loaded) >= s.refresh ||
		ahead && (!s.readAhead || time.Since(s.loaded) >= time.Second)
	if stale {
		s.readAhead = ahead
		rows, at, err := s.store.Services(ctx)
		if err != nil {
			return ledger.Policy{}, 0, false, fmt.Errorf("meter: services: %w", err)
		}
		s.byID = make(map[string]ledger.Service, len(rows))
		for _, r := range rows {
			s.byID[r.ID] = r
		}
		s.loaded, s.exactUntil = time.Now(), at.Truncate(time.Minute).Add(time.Minute)
		v, ok = s.byID[id]
	}
	if !ok {
		return ledger.Policy{}, 0, false, nil
	}
	p, ok := ledger.InForce(v.History, opened)
	return p, v.ComputeUnitsPerRelay, ok, nil
}

// priced returns the pricing of policies row id with the given weight. A
// policy this build cannot construct (a version it does not implement,
// parameters it refuses) prices with the message policy, and says why in
// problem; the stream keeps its recorded policy row.
func (s *services) priced(ctx context.Context, id, weight int64) (pricing, error) {
	s.mu.Lock()
	p, ok := s.built[id]
	s.mu.Unlock()
	if !ok {
		row, err := s.store.Policy(ctx, id)
		if err != nil {
			return pricing{}, fmt.Errorf("meter: %w", err)
		}
		pol, err := policy.New(row.Name, int(row.Version), row.Params)
		if err != nil {
			pol = policy.Message{}
			p.problem = fmt.Sprintf("policy %s v%d (row %d): %v; metered with %s v%d meanwhile",
				row.Name, row.Version, id, err, policy.MessageName, policy.MessageVersion)
			s.log.Warn("meter: policy unusable", "policy", row.Name, "version", row.Version, "id", id, "err", err)
		}
		p.policy, p.policyID = pol, id
		s.mu.Lock()
		s.built[id] = p
		s.mu.Unlock()
	}
	p.weight = weight
	return p, nil
}

// fallbackPricing meters an unknown service or stream: message v1, weight 1.
func (s *services) fallbackPricing(ctx context.Context) (pricing, error) {
	s.mu.Lock()
	id := s.fallback
	s.mu.Unlock()
	if id == 0 {
		var err error
		id, err = s.store.PolicyID(ctx, ledger.Policy{Name: policy.MessageName, Version: policy.MessageVersion})
		if err != nil {
			return pricing{}, fmt.Errorf("meter: %w", err)
		}
		s.mu.Lock()
		s.fallback = id
		s.mu.Unlock()
	}
	return s.priced(ctx, id, 1)
}
