package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestParseConfigLayers checks the precedence flags > RELAYMETER_* > YAML,
// DATABASE_URL as a fallback, positional arguments among flags, and the
// services list.
func TestParseConfigLayers(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relaymeter.yaml")
	if err := os.WriteFile(cfgPath, []byte(`
http: 127.0.0.1:1111
ws-listen: 127.0.0.1:2222
kafka: [k1:9092, k2:9092]
services:
  - id: eth
    protocol: WEBSOCKET_JSONRPC
    policy: message
    compute_units_per_relay: 3
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RELAYMETER_WS_LISTEN", "127.0.0.1:3333")
	t.Setenv("DATABASE_URL", "postgres://from-env/db")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	httpAddr := fs.String("http", "default", "")
	wsListen := fs.String("ws-listen", "default", "")
	kafka := fs.String("kafka", "", "")
	dbURL := fs.String("database-url", "", "")
	admin := fs.String("admin-key", "", "")
	fs.String("config", "", "")
	fc, err := parseConfig(fs, []string{"up", "--config", cfgPath, "--admin-key", "flag-key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"http (YAML)", *httpAddr, "127.0.0.1:1111"},
		{"ws-listen (env over YAML)", *wsListen, "127.0.0.1:3333"},
		{"kafka (YAML list)", *kafka, "k1:9092,k2:9092"},
		{"database-url (DATABASE_URL)", *dbURL, "postgres://from-env/db"},
		{"admin-key (flag)", *admin, "flag-key"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(fc.args) != 1 || fc.args[0] != "up" {
		t.Errorf("positional args %q, want [up]", fc.args)
	}
	if len(fc.Services) != 1 || fc.Services[0].ID != "eth" || fc.Services[0].ComputeUnitsPerRelay != 3 {
		t.Errorf("services %+v", fc.Services)
	}

	// An unknown key in the file is an error, not silently ignored.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("htpp: x\n"), 0o600)
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	fs2.String("http", "", "")
	fs2.String("config", "", "")
	if _, err := parseConfig(fs2, []string{"--config", bad}); err == nil {
		t.Error("unknown key htpp accepted")
	}
}
