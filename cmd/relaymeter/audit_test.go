package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// auditStack is the whole stack after traffic of two applications through
// its edge, every event metered.
func auditStack(t *testing.T, ctx context.Context) *testStack {
	t.Helper()
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestStack(t, ctx, "audit", "ws://"+up.addr()+"/",
		func(ctx context.Context) error { node.Run(ctx); return nil }, up.serve)
	for _, app := range []string{"app-1", "app-2"} {
		conn, _, err := websocket.Dial(ctx, "ws://"+ts.edge+"/"+app, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_blockNumber","params":[]}`, i)
			if err := conn.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := conn.Read(ctx); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(websocket.StatusNormalClosure, "bye")
	}
	ts.settled(t)
	waitMetered(t, ts.pool, ts.cluster.Brokers, meter.DefaultGroupID)
	return ts
}

// runAuditCmd runs relaymeter audit in this process and returns its exit
// status and output.
func runAuditCmd(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"audit"}, args...), stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestAuditCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := auditStack(t, ctx)
	flags := []string{"--kafka", strings.Join(ts.cluster.Brokers, ","), "--database-url", ts.url}

	code, out, errs := runAuditCmd(ctx, flags...)
	if code != 0 || !strings.Contains(out, "result: match") {
		t.Fatalf("untouched: exit %d\n%s%s", code, out, errs)
	}
	// 2 streams of 5 requests and 5 responses, all in the summary.
	if !regexpMatch(`(?m)^  messages\s+20 rows  0 missing  0 extra  0 differ$`, out) ||
		!regexpMatch(`(?m)^  streams\s+2 rows  0 missing  0 extra  0 differ$`, out) {
		t.Errorf("summary:\n%s", out)
	}
	if code, out, _ := runAuditCmd(ctx, append(flags, "--application", "app-2")...); code != 0 ||
		!regexpMatch(`(?m)^  messages\s+10 rows`, out) {
		t.Errorf("--application app-2: exit %d\n%s", code, out)
	}
	if code, out, _ := runAuditCmd(ctx, append(flags, "--from", "2000-01-01T00:00:00Z", "--to", "2000-01-02T00:00:00Z")...); code != 0 ||
		!regexpMatch(`(?m)^  messages\s+0 rows`, out) {
		t.Errorf("a window without traffic: exit %d\n%s", code, out)
	}

	if _, err := ts.pool.Exec(ctx, `UPDATE messages SET units = 7 WHERE seq = (SELECT min(seq) FROM messages)`); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runAuditCmd(ctx, flags...)
	if code != 1 || !strings.Contains(out, "result: DIFFERS") || !strings.Contains(out, "differs messages") {
		t.Fatalf("after tampering: exit %d\n%s%s", code, out, errs)
	}
	// The other application's rows still match.
	if code, _, _ := runAuditCmd(ctx, append(flags, "--service", "none")...); code != 0 {
		t.Errorf("--service none after tampering: exit %d, want 0", code)
	}

	if code, _, errs := runAuditCmd(ctx, append(flags, "--from", "yesterday")...); code != 2 || !strings.Contains(errs, "--from") {
		t.Errorf("a bad --from: exit %d, %s", code, errs)
	}
	if code, _, errs := runAuditCmd(ctx, "--kafka", strings.Join(ts.cluster.Brokers, ","),
		"--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); code != 2 {
		t.Errorf("no database: exit %d, %s", code, errs)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func TestRepriceCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := auditStack(t, ctx)
	if _, err := ledger.New(ts.pool).AddTariff(ctx, ledger.Tariff{Service: "eth", PricePerUnit: "0.25", Currency: "upokt"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	flags := []string{"--kafka", strings.Join(ts.cluster.Brokers, ","), "--database-url", ts.url, "--service", "eth",
		"--from", now.Add(-time.Hour).Format(time.RFC3339), "--to", now.Add(time.Hour).Format(time.RFC3339)}
	reprice := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(append([]string{"reprice"}, flags...), args...), stdio{in: strings.NewReader(""), out: &out, err: &errb})
		return code, out.String(), errb.String()
	}
	// Each application: 5 requests and 5 responses, a relay and a unit
	// each under the message policy, at 0.25 upokt a unit.
	for _, tc := range []struct {
		args []string
		want string // each application's row, after its name
	}{
		{[]string{"--tariff", `{"price": "3", "currency": "upokt"}`}, `10\s+10\s+10\s+10\s+2\.5 upokt\s+30 upokt`},
		{[]string{"--policy", `{"name": "method", "params": {"default": 3}}`}, `10\s+30\s+10\s+30\s+2\.5 upokt\s+7\.5 upokt`},
	} {
		code, out, errs := reprice(tc.args...)
		if code != 0 {
			t.Fatalf("reprice %s: exit %d\n%s%s", tc.args, code, out, errs)
		}
		for _, app := range []string{"app-1", "app-2"} {
			if !regexpMatch(`(?m)^`+app+`\s+`+tc.want+`$`, out) {
				t.Errorf("reprice %s: no row %s %s in\n%s", tc.args, app, tc.want, out)
			}
		}
	}
	// GraphQL's whatIf is the same what-if: the same figures.
	var res struct {
		Data struct {
			WhatIf []struct {
				Application   string
				Now, Proposed struct {
					Relays, Units int64
					Amount        []struct{ Currency, Value string }
				}
			}
		}
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	window := fmt.Sprintf(`from: %q, to: %q`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	gqlPost(t, ctx, "http://"+ts.api, "test-key", `{ whatIf(service: "eth", policy: {name: "method", params: {default: 3}}, `+window+`) {
		application now { relays units amount { currency value } } proposed { relays units amount { currency value } } } }`, &res)
	if len(res.Errors) > 0 || len(res.Data.WhatIf) != 2 {
		t.Fatalf("whatIf: %+v", res)
	}
	for _, r := range res.Data.WhatIf {
		if r.Now.Relays != 10 || r.Proposed.Relays != 30 || r.Proposed.Units != 30 || len(r.Now.Amount) != 1 ||
			r.Now.Amount[0].Value != "2.5" || len(r.Proposed.Amount) != 1 || r.Proposed.Amount[0].Value != "7.5" {
			t.Errorf("whatIf %s: %+v", r.Application, r)
		}
	}
	res.Data.WhatIf = nil
	gqlPost(t, ctx, "http://"+ts.api, "test-key", `{ whatIf(service: "eth", tariff: {pricePerUnit: "-1", currency: "upokt"}, `+window+`) { application } }`, &res)
	if len(res.Errors) != 1 || res.Errors[0].Extensions.Code != "BAD_USER_INPUT" {
		t.Errorf("whatIf with a negative price: %+v", res)
	}

	if code, _, errs := reprice("--policy", `{"name": "nope"}`); code != 1 || !strings.Contains(errs, "nope") {
		t.Errorf("an unknown policy: exit %d, %s", code, errs)
	}
	if code, _, _ := reprice(); code != 1 {
		t.Errorf("no proposal: exit %d", code)
	}
	// Nothing was written.
	var n int64
	if err := ts.pool.QueryRow(ctx, `SELECT sum(relays) FROM usage_minutes`).Scan(&n); err != nil || n != 20 {
		t.Errorf("ledger relays %d (%v) after reprice, want 20", n, err)
	}
}
