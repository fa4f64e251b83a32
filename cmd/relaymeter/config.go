package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// fileConfig is the YAML file named by --config: any flag by its name as a
// top-level key, and the services to meter.
type fileConfig struct {
	values   map[string]string
	Services []serviceConfig
	// args are the positional arguments, wherever they stood among the flags.
	args []string
}

// serviceConfig is one service in the YAML file.
type serviceConfig struct {
	ID                   string         `yaml:"id"`
	Protocol             string         `yaml:"protocol"`
	Upstream             upstreams      `yaml:"upstream"`
	Policy               string         `yaml:"policy"`
	PolicyVersion        int            `yaml:"policy_version"`
	Params               map[string]any `yaml:"params"`
	ComputeUnitsPerRelay int64          `yaml:"compute_units_per_relay"`
	SessionSeconds       int            `yaml:"session_seconds"`
	Tariffs              []tariffConfig `yaml:"tariffs"`
	// FeeBps is the take rate of the fees account on the service's
	// settlements, in basis points; unset leaves the stored one (none: 0).
	FeeBps *int64 `yaml:"fee_bps"`
	// PayloadCapture is how much of each payload the WebSocket edge
	// records for the service (-1 whole, 0 none, N the first N); unset, the
	// edge's --payload-capture, or whole for a policy that reads payloads.
	PayloadCapture *int64 `yaml:"payload_capture"`
}

// tariffConfig is one price of a service in the YAML file, which declares
// each (service, application)'s prices over time: an entry without
// effective_from is in force since ever (only as the pair's first price),
// one with it from then (a whole minute, not in the past once the pair has
// a price). Tariffs are never changed: an entry stored already must keep
// its price and currency, a new price is a new entry.
type tariffConfig struct {
	// PricePerUnit is an exact decimal, e.g. 0.000001 (YAML keeps its
	// text: no float rounding).
	PricePerUnit string `yaml:"price_per_unit"`
	Currency     string `yaml:"currency"`
	// Application is the application the price is negotiated for; empty
	// for the service's default.
	Application string `yaml:"application"`
	// EffectiveFrom is an RFC 3339 time on a whole minute; empty for
	// since ever.
	EffectiveFrom string `yaml:"effective_from"`
}

// parseConfig parses args into fs and fills each flag not given on the
// command line from RELAYMETER_<NAME> (dashes as underscores), then from
// the YAML file named by the flag "config", if fs has one. DATABASE_URL
// stands in for RELAYMETER_DATABASE_URL.
func parseConfig(fs *flag.FlagSet, args []string) (*fileConfig, error) {
	// Flags may follow positional arguments (migrate up --database-url …).
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var firstErr error
	apply := func(name, value, from string) {
		if err := fs.Set(name, value); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: invalid value for --%s: %w", from, name, err)
		}
		set[name] = true
	}
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "RELAYMETER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			apply(f.Name, v, env)
		} else if f.Name == "database-url" && os.Getenv("DATABASE_URL") != "" {
			apply(f.Name, os.Getenv("DATABASE_URL"), "DATABASE_URL")
		}
	})
	fc := &fileConfig{values: map[string]string{}, args: positional}
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		if err := fc.load(f.Value.String()); err != nil {
			return nil, err
		}
		for k, v := range fc.values {
			if fs.Lookup(k) == nil {
				return nil, fmt.Errorf("config %s: unknown key %q", f.Value.String(), k)
			}
			if !set[k] {
				apply(k, v, "config "+f.Value.String())
			}
		}
	}
	return fc, firstErr
}

func (fc *fileConfig) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for k, n := range raw {
		if k == "chain" && n.Kind == yaml.MappingNode {
			// Strictly, as services: each key stands for a chain flag.
			var c chainConfig
			b, err := yaml.Marshal(&n)
			if err == nil {
				dec := yaml.NewDecoder(bytes.NewReader(b))
				dec.KnownFields(true)
				err = dec.Decode(&c)
			}
			if err != nil {
				return fmt.Errorf("config %s: chain: %w", path, err)
			}
			maps.Copy(fc.values, c.values())
			continue
		}
		if k == "services" {
			// Strictly: a misspelt key of a service is an error, not a
			// default.
			b, err := yaml.Marshal(&n)
			if err == nil {
				dec := yaml.NewDecoder(bytes.NewReader(b))
				dec.KnownFields(true)
				err = dec.Decode(&fc.Services)
			}
			if err != nil {
				return fmt.Errorf("config %s: services: %w", path, err)
			}
			continue
		}
		if n.Kind != yaml.ScalarNode {
			if n.Kind == yaml.SequenceNode {
				var items []string
				if err := n.Decode(&items); err != nil {
					return fmt.Errorf("config %s: %s: %w", path, k, err)
				}
				fc.values[k] = strings.Join(items, ",")
				continue
			}
			return fmt.Errorf("config %s: %s must be a scalar or a list", path, k)
		}
		fc.values[k] = n.Value
	}
	for i, s := range fc.Services {
		if s.ID == "" {
			return fmt.Errorf("config %s: services[%d]: id is required", path, i)
		}
		if s.Protocol == "" {
			return fmt.Errorf("config %s: service %s: protocol is required", path, s.ID)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var (
	errNoDatabase = errors.New("no database: give --database-url (or RELAYMETER_DATABASE_URL / DATABASE_URL)")
	errNoKafka    = errors.New("no Kafka: give --kafka (or RELAYMETER_KAFKA)")
	errNoAdminKey = errors.New("no admin key: give --admin-key (or RELAYMETER_ADMIN_KEY)")
)
