package policy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

func exprParams(expr string) string {
	b, _ := json.Marshal(map[string]string{"expression": expr})
	return string(b)
}

func TestExpr(t *testing.T) {
	req := &event.Message{Direction: up, Role: event.Role_REQUEST, Method: "eth_getLogs", WireSize: 300, PayloadSize: 250, Payload: []byte(`{"method":"eth_getLogs"}`)}
	resp := &event.Message{Direction: down, Role: event.Role_RESPONSE, WireSize: 5000, PayloadSize: 4990, Payload: []byte("{}")}
	batch := &event.Message{Direction: up, Role: event.Role_REQUEST, BatchSize: 7, BatchMethods: []string{"a", "b"}}
	for _, tc := range []struct {
		name, expr string
		msg        *event.Message
		want       uint64
	}{
		{"constant", `3`, req, 3},
		{"direction", `direction == "CLIENT_TO_UPSTREAM" ? 1 : 0`, req, 1},
		{"direction response", `direction == "CLIENT_TO_UPSTREAM" ? 1 : 0`, resp, 0},
		{"role", `role == "RESPONSE" ? 2 : 0`, resp, 2},
		{"method", `method == "eth_getLogs" ? 50 : 1`, req, 50},
		{"wire size", `wire_size / 1000 + 1`, resp, 6},
		{"payload size", `payload_size`, req, 250},
		{"payload", `size(payload) + (payload == b"{}" ? 100 : 0)`, resp, 102},
		{"stream", `protocol == "WEBSOCKET_JSONRPC" && service == "svc" && application == "app" ? 9 : 0`, req, 9},
		{"batch", `batch_size > 0 ? batch_size : 1`, batch, 7},
		{"empty message", `wire_size + payload_size + size(payload) + size(method)`, &event.Message{}, 0},
		{"unknown enum value", `direction == "7" ? 4 : 0`, &event.Message{Direction: 7}, 4},
		{"huge message clamps", `wire_size > 0 ? 1 : 0`, &event.Message{WireSize: 1<<64 - 1}, 1},
		{"comprehension within cost", `[1, 2, 3].map(x, x * 2).size()`, req, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, state := units(t, mustNew(t, "expr", exprParams(tc.expr)), tc.msg)
			if got[0] != tc.want || state != nil {
				t.Fatalf("units = %d, want %d", got[0], tc.want)
			}
		})
	}
}

func TestExprEvalErrors(t *testing.T) {
	for _, tc := range []struct{ name, expr, want string }{
		{"negative", `wire_size - 1000`, "negative"},
		{"division by zero", `10 / payload_size`, "division by zero"},
		{"overflow", `wire_size * 9223372036854775807`, "overflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, "expr", exprParams(tc.expr))
			u, _, err := p.Units(&policy.Stream{}, nil, &event.Message{WireSize: 10})
			if err == nil || u != 0 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("units %d err %v, want an error saying %q", u, err, tc.want)
			}
		})
	}
}

// TestExprCostLimit: an expression whose evaluation would cost more than
// ExprCostLimit stops with an error rather than running on.
func TestExprCostLimit(t *testing.T) {
	ten := `[0,1,2,3,4,5,6,7,8,9]`
	expensive := ten + `.map(a, ` + ten + `.map(b, ` + ten + `.map(c, ` + ten + `.map(d, ` + ten + `.map(e, a+b+c+d+e))))).size()`
	p := mustNew(t, "expr", exprParams(expensive))
	u, _, err := p.Units(&policy.Stream{}, nil, &event.Message{})
	if err == nil || u != 0 || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("units %d err %v, want the cost limit", u, err)
	}
	// Scanning a huge payload is paid for by its size.
	p = mustNew(t, "expr", exprParams(`string(payload).contains("x") ? 1 : 0`))
	huge := &event.Message{Payload: make([]byte, 1<<20)}
	if _, _, err := p.Units(&policy.Stream{}, nil, huge); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("scanning 1 MiB: err %v, want the cost limit", err)
	}
}

func TestExprCompileErrorPosition(t *testing.T) {
	_, err := policy.New("expr", 1, json.RawMessage(exprParams("wire_size +\n   nope * 2")))
	if err == nil || !strings.Contains(err.Error(), "2:4") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want the undeclared name at 2:4", err)
	}
}

func TestExprConcurrent(t *testing.T) {
	p := mustNew(t, "expr", exprParams(`wire_size`))
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 1000 {
				u, _, err := p.Units(&policy.Stream{}, nil, &event.Message{WireSize: uint64(g*1000 + i)})
				if err == nil && u != uint64(g*1000+i) {
					err = fmt.Errorf("goroutine %d: units %d, want %d", g, u, g*1000+i)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
