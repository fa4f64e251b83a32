package subscriptions_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/relaymeter/relaymeter/subscriptions"
)

// FuzzConn drives a connection with messages from both sides and moves
// split out of the input: nothing panics or hangs, a valid message stays
// valid JSON whatever it is rewritten to, and a move answers every request
// it owes exactly once.
func FuzzConn(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}` + "\n" +
		`<{"jsonrpc":"2.0","id":1,"result":"0x1"}` + "\n" + `!` + "\n" +
		`<{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"hash":"0x2"}}}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"eth_unsubscribe","params":["0x1"]}`))
	f.Add([]byte(`[{"id":"a","method":"eth_subscribe","params":["logs",{}]},{"id":"b","method":"x"}]` + "\n" +
		`<[{"id":"a","result":"0x1"},{"id":"b","result":null}]` + "\n!\n" + `<{"id":"\"","result":"0x1"}`))
	f.Add([]byte("<{\"method\":\"eth_subscription\",\"params\":{\"subscription\":\"0x1\",\"result\":{\"hash\":\"\\\"\"}}}\n!\n{\"id\":[1,{\"}\":2}],\"method\":\"eth_unsubscribe\",\"params\":[\"0x1\"]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := subscriptions.New(subscriptions.Config{MaxSubscriptions: 4, MaxInFlight: 8, HeadWindow: 2})
		var seq uint64
		owed := 0
		lines := bytes.Split(data, []byte("\n"))
		valid := true // every message so far is valid JSON, so every answer must be
		for _, line := range lines {
			if !(len(line) == 1 && line[0] == '!') {
				valid = valid && json.Valid(bytes.TrimPrefix(line, []byte("<")))
			}
		}
		for _, line := range lines {
			switch {
			case len(line) == 1 && line[0] == '!':
				for _, b := range c.Lost(seq) {
					if valid && !json.Valid(b) {
						t.Fatalf("Lost answer %s: not JSON", b)
					}
				}
				owed = c.InFlight()
				for _, b := range c.Resubscribe() {
					if valid && !json.Valid(b) {
						t.Fatalf("re-subscription %s: not JSON", b)
					}
				}
			case len(line) > 0 && line[0] == '<':
				msg := line[1:]
				out, _ := c.FromUpstream(append([]byte(nil), msg...))
				if valid && !json.Valid(out) {
					t.Fatalf("FromUpstream(%s) = %s: not JSON", msg, out)
				}
			default:
				seq++
				v, ans := c.FromClient(seq, line)
				if v == subscriptions.Refuse && valid && !json.Valid(ans) {
					t.Fatalf("refusal of %s: %s", line, ans)
				}
				if v == subscriptions.Rewrite {
					if out := c.ToUpstream(append([]byte(nil), line...)); valid && !json.Valid(out) {
						t.Fatalf("ToUpstream(%s) = %s", line, out)
					}
				}
			}
		}
		if left := len(c.Lost(seq)); left > c.InFlight()+owed+int(seq) {
			t.Fatalf("%d answers for %d messages", left, seq)
		}
		if len(c.Lost(seq)) != 0 {
			t.Fatal("Lost answered twice")
		}
	})
}
