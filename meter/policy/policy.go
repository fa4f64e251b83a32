// Package policy defines the unit-of-work Policy that prices each metered
// message, the registry policies join by name, and the built-in policies.
//
// A policy is one file: it registers a Definition in init(), decodes its
// parameters strictly (unknown fields rejected) and validates them, and ends
// with an interface guard. The meter builds one Policy per service from the
// service's policy name, version and parameters, and asks it for the units of
// every Message event of the service's streams, in stream order.
//
// Carry across messages. A policy that needs state between the messages of a
// stream (a partial delimited record) receives the stream's state as opaque
// bytes and returns the new state; the meter persists it per stream
// (streams.policy_state) in the same transaction as the relays, so a replay
// after a crash or rebalance continues from exactly the committed carry. A
// stateless policy ignores state and returns nil. A Policy itself is
// immutable after construction and safe for concurrent use.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// Policy computes the units of work of one message.
type Policy interface {
	// Name is the name the policy is registered under.
	Name() string
	// Version is the version of the pricing rule; relays record it so a
	// replay prices exactly as the original run did.
	Version() int
	// Units returns the units of work of m, a message of stream s, given
	// the stream's carry state (nil at the start of a stream) and the carry
	// after m (nil for none). Each unit becomes one relay of uniform
	// weight. It must not retain s, m, state or the returned state's
	// backing array beyond the call's caller persisting it.
	Units(s *Stream, state []byte, m *event.Message) (units uint64, newState []byte, err error)
}

// Stream is what a policy may know of the stream a message belongs to.
type Stream struct {
	// Protocol is the stream's protocol by its enum name
	// (WEBSOCKET_JSONRPC, STRATUM_V2, BEAM).
	Protocol    string
	Service     string
	Application string
}

// Finisher is a policy whose carry can hold an unfinished unit when its
// stream closes (a record still waiting for its delimiter). Remainder
// describes that carry, "" when nothing is unfinished; the meter reports
// it with the stream's close and bills none of it.
type Finisher interface {
	Remainder(state []byte) string
}

// Definition describes a registered policy.
type Definition struct {
	// Name identifies the policy in configuration (services.policy).
	Name string
	// Version is the current version of the policy's pricing rule.
	Version int
	// New builds a Policy from its raw JSON parameters (nil or empty for
	// none). It decodes them strictly and validates them.
	New func(params json.RawMessage) (Policy, error)
	// Payload says the policy reads message payloads: the edges of its
	// services capture them whole, since a cut payload cannot be priced.
	Payload bool
}

// ErrUnknownPolicy reports a policy name no policy registered under.
var ErrUnknownPolicy = errors.New("policy: unknown policy")

// ErrVersion reports a policy version this build does not implement.
var ErrVersion = errors.New("policy: unsupported policy version")

// ParamsError reports parameters a policy rejected.
type ParamsError struct {
	Policy string
	Err    error
}

func (e *ParamsError) Error() string {
	return fmt.Sprintf("policy: %s: parameters: %v", e.Policy, e.Err)
}

func (e *ParamsError) Unwrap() error { return e.Err }

var (
	mu       sync.RWMutex
	registry = map[string]map[int]Definition{} // name → version → definition
)

// Register adds a policy version to the registry; several versions of one
// policy may be registered, so that a replay prices old streams as they
// were priced. It panics when the name is empty, the version is not
// positive or already registered, or New is nil: these are programming
// errors found at start-up.
func Register(d Definition) {
	if d.Name == "" {
		panic("policy: Register with an empty name")
	}
	if d.New == nil || d.Version <= 0 {
		panic(fmt.Sprintf("policy: Register %q: nil New or non-positive version", d.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[d.Name][d.Version]; dup {
		panic(fmt.Sprintf("policy: %q v%d registered twice", d.Name, d.Version))
	}
	if registry[d.Name] == nil {
		registry[d.Name] = map[int]Definition{}
	}
	registry[d.Name][d.Version] = d
}

// Lookup returns the latest version registered under name.
func Lookup(name string) (Definition, bool) {
	mu.RLock()
	defer mu.RUnlock()
	var latest Definition
	for v, d := range registry[name] {
		if v > latest.Version {
			latest = d
		}
	}
	return latest, latest.Version > 0
}

// NeedsPayload reports whether the latest version registered under name
// reads message payloads (Definition.Payload).
func NeedsPayload(name string) bool {
	d, ok := Lookup(name)
	return ok && d.Payload
}

// Names returns the registered policy names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New builds the policy registered under name at version with params. The
// error wraps ErrUnknownPolicy, ErrVersion or is a *ParamsError.
func New(name string, version int, params json.RawMessage) (Policy, error) {
	mu.RLock()
	versions, known := registry[name]
	d, ok := versions[version]
	mu.RUnlock()
	if !known {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPolicy, name)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s v%d", ErrVersion, name, version)
	}
	p, err := d.New(params)
	if err != nil {
		var pe *ParamsError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &ParamsError{Policy: name, Err: err}
	}
	return p, nil
}

// Validator is implemented by parameter structs that check themselves after
// decoding.
type Validator interface {
	Validate() error
}

// DecodeParams decodes raw JSON parameters into dst, rejecting unknown
// fields and trailing data, then validates dst when it is a Validator. Empty
// or null parameters leave dst as it is (its defaults) and still validate.
func DecodeParams(raw json.RawMessage, dst any) error {
	if t := bytes.TrimSpace(raw); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("decode: trailing data after the parameters object")
		}
	}
	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}
