package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/cel-go/common/types"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// TestExprFastPath: an expression provably within the cost limit over
// small inputs gets an untracked program, and it gives what the tracked
// one gives; one that is not, or a message with a large input, is
// evaluated with the tracker.
func TestExprFastPath(t *testing.T) {
	build := func(expr string) Expr {
		t.Helper()
		raw, _ := json.Marshal(ExprParams{Expression: expr})
		p, err := newExpr(raw)
		if err != nil {
			t.Fatal(err)
		}
		return p.(Expr)
	}
	ten := `[0,1,2,3,4,5,6,7,8,9]`
	for expr, fast := range map[string]bool{
		`wire_size / 1024 + 1`: true,
		`method == "eth_getLogs" ? 50 : direction == "CLIENT_TO_UPSTREAM" ? 1 : 0`:                                        true,
		`string(payload).contains("x") ? 2 : 1`:                                                                           true,
		ten + `.map(a, ` + ten + `.map(b, ` + ten + `.map(c, ` + ten + `.map(d, ` + ten + `.map(e, a+b+c+d+e))))).size()`: false,
	} {
		e := build(expr)
		if (e.fast != nil) != fast {
			t.Errorf("%s: fast program %v, want %v", expr, e.fast != nil, fast)
		}
		if e.fast == nil {
			continue
		}
		s := &Stream{Protocol: "WEBSOCKET_JSONRPC"}
		for _, m := range []*event.Message{
			{Direction: event.Direction_CLIENT_TO_UPSTREAM, Method: "eth_getLogs", WireSize: 5000, Payload: []byte("axb")},
			{Direction: event.Direction_UPSTREAM_TO_CLIENT, WireSize: 10, Payload: []byte(strings.Repeat("y", exprSmall))},
		} {
			a := &exprActivation{s: s, m: m}
			v1, _, err1 := e.fast.Eval(a)
			v2, _, err2 := e.tracked.Eval(a)
			if err1 != nil || err2 != nil || v1.Equal(v2) != types.True {
				t.Errorf("%s: fast %v %v, tracked %v %v", expr, v1, err1, v2, err2)
			}
		}
	}
	if small(&Stream{}, &event.Message{Payload: make([]byte, exprSmall+1)}) {
		t.Error("a payload over exprSmall counts as small")
	}
	if small(&Stream{Service: strings.Repeat("s", exprSmall+1)}, &event.Message{}) {
		t.Error("a service name over exprSmall counts as small")
	}
}
