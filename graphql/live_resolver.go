package graphql

import (
	"context"
	"time"
)

// pollSettings is how a subscription polls, carried in its context by the
// WebSocket session: how often, and a semaphore that bounds the polls of
// every subscriber in flight at once so that many subscribers slow their
// updates down instead of loading Postgres.
type pollSettings struct {
	every time.Duration
	slots chan struct{}
}

type pollSettingsKey struct{}

// withPollSettings returns ctx carrying s.
func withPollSettings(ctx context.Context, s *pollSettings) context.Context {
	return context.WithValue(ctx, pollSettingsKey{}, s)
}

// pollSettingsFrom returns the settings of ctx, or the defaults with no
// bound on concurrent polls.
func pollSettingsFrom(ctx context.Context) *pollSettings {
	if s, ok := ctx.Value(pollSettingsKey{}).(*pollSettings); ok {
		return s
	}
	return &pollSettings{every: DefaultLivePollInterval}
}

// acquire takes a poll slot; false if ctx ended first.
func (s *pollSettings) acquire(ctx context.Context) bool {
	if s.slots == nil {
		return ctx.Err() == nil
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *pollSettings) release() {
	if s.slots != nil {
		<-s.slots
	}
}

// usageArgs are the arguments of usage and usageUpdated.
type usageArgs = struct{ Filter *usageFilterInput }

// UsageUpdated resolves Subscription.usageUpdated: the totals of
// Query.usage with the same filter, at once and then whenever they change.
// It asks the root resolver's Usage with the subscriber's context, so the
// subscriber sees exactly what its key lets usage show.
func (r *resolver) UsageUpdated(ctx context.Context, args usageArgs) (<-chan *usageResolver, error) {
	set := pollSettingsFrom(ctx)
	poll := func() (*usageResolver, error) {
		if !set.acquire(ctx) {
			return nil, ctx.Err()
		}
		defer set.release()
		return r.Usage(ctx, args)
	}
	first, err := poll()
	if err != nil {
		return nil, err
	}
	out := make(chan *usageResolver)
	go func() {
		defer close(out)
		t := time.NewTicker(set.every)
		defer t.Stop()
		last := first
		next := first // the value to send; nil when sent
		for {
			var send chan<- *usageResolver
			if next != nil {
				send = out
			}
			select {
			case <-ctx.Done():
				return
			case send <- next:
				last, next = next, nil
			case <-t.C:
				u, err := poll()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue // logged by Usage; the next tick tries again
				}
				if !sameUsage(u, last) {
					next = u
				} else {
					next = nil // back where the client is: nothing to say
				}
			}
		}
	}()
	return out, nil
}

// sameUsage reports whether a and b hold the same totals.
func sameUsage(a, b *usageResolver) bool {
	return a.Messages() == b.Messages() && a.Relays() == b.Relays() &&
		a.Units() == b.Units() && a.Bytes() == b.Bytes()
}
