package meter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// pricing is how a stream is metered: its policy and relay weight.
type pricing struct {
	policy policy.Policy
	weight int64
	// problem, when not empty, is why the service's own policy could not be
	// used (the stream is metered with the default message policy).
	problem string
}

// defaultPricing meters an unknown service or stream: message v1, weight 1.
func defaultPricing() pricing {
	p, err := policy.New(policy.MessageName, policy.MessageVersion, nil)
	if err != nil {
		panic(fmt.Sprintf("meter: the built-in message policy: %v", err))
	}
	return pricing{policy: p, weight: 1}
}

// services caches the services table and the policies built from it. It is
// shared by the partitions of a Meter.
type services struct {
	store   *ledger.Store
	refresh time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	loaded time.Time
	byID   map[string]ledger.Service
	built  map[string]pricing // key: service id
}

func newServices(store *ledger.Store, refresh time.Duration, log *slog.Logger) *services {
	return &services{store: store, refresh: refresh, log: log}
}

// lookup returns the service's row and whether it is configured, reloading
// the table when it is missing and the cache is older than the refresh
// interval (or never loaded).
func (s *services) lookup(ctx context.Context, id string) (ledger.Service, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.byID[id]; ok && time.Since(s.loaded) < s.refresh {
		return v, true, nil
	}
	if s.byID == nil || time.Since(s.loaded) >= s.refresh {
		rows, err := s.store.Services(ctx)
		if err != nil {
			return ledger.Service{}, false, fmt.Errorf("meter: services: %w", err)
		}
		s.byID = make(map[string]ledger.Service, len(rows))
		for _, r := range rows {
			s.byID[r.ID] = r
		}
		s.built = map[string]pricing{}
		s.loaded = time.Now()
	}
	v, ok := s.byID[id]
	return v, ok, nil
}

// pricing returns how to meter a stream of service id whose policy is name
// at version (from its stream row, or the service's at open). A policy that
// cannot be built falls back to the default, with the reason in problem.
func (s *services) pricing(svc ledger.Service, name string, version int, weight int64) pricing {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprintf("%s\x00%s\x00%d\x00%d", svc.ID, name, version, weight)
	if p, ok := s.built[key]; ok {
		return p
	}
	var params []byte
	if svc.Policy == name {
		params = svc.PolicyParams
	}
	pol, err := policy.New(name, version, params)
	var p pricing
	if err != nil {
		p = defaultPricing()
		p.weight = weight
		p.problem = fmt.Sprintf("service %q: %v; metered with message v%d", svc.ID, err, policy.MessageVersion)
		s.log.Warn("meter: service policy unusable", "service", svc.ID, "policy", name, "version", version, "err", err)
	} else {
		p = pricing{policy: pol, weight: weight}
	}
	if s.built == nil {
		s.built = map[string]pricing{}
	}
	s.built[key] = p
	return p
}
