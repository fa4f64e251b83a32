package meter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestPairing runs the pairing rule through the meter into Postgres: each
// script is a stream (q request, r response, n notification, c close; the
// StreamOpened is seq 1), and the relays must pair as want says, whether
// the stream arrives in one batch or in batches of 1 or 2 records (the
// waiting relays then pair through the stream's first counterpart, written
// by a later batch).
func TestPairing(t *testing.T) {
	e := newEnv(t, 0)
	n := 0
	for _, tc := range []struct {
		name, script string
		want         []string // per relay, by seq: "seq:request/response", "-" for NULL, "!" if unpaired
	}{
		{"request before any response waits", "q r", []string{"2:2/3", "3:2/3"}},
		{"multiple waiting", "q q q r", []string{"2:2/5", "3:3/5", "4:4/5", "5:4/5"}},
		{"notification pairs with latest request", "q r q n n", []string{"2:2/3", "3:2/3", "4:4/3", "5:4/5", "6:4/6"}},
		{"responses before any request wait", "n n q r", []string{"2:4/2", "3:4/3", "4:4/3", "5:4/5"}},
		{"unpaired at close", "q q c", []string{"2:2/-!", "3:3/-!"}},
		{"unpaired responses at close", "n c", []string{"2:-/2!"}},
		{"paired relays stay paired at close", "q r c", []string{"2:2/3", "3:2/3"}},
		{"waiting stays open without a close", "q q", []string{"2:2/-", "3:3/-"}},
	} {
		for _, size := range []int{1, 2, 100} {
			n++
			t.Run(fmt.Sprintf("%s/batch%d", tc.name, size), func(t *testing.T) {
				// One database, a stream and a consumer group per case.
				m := e.meter(t, func(c *Config) { c.GroupID = fmt.Sprint("pairing-", n) })
				g := newGen(n)
				recs := []kafka.Message{g.open("eth", "app", "sup")}
				for _, c := range strings.Fields(tc.script) {
					switch c {
					case "q":
						recs = append(recs, g.req())
					case "r":
						recs = append(recs, g.resp())
					case "n":
						recs = append(recs, g.note())
					case "c":
						recs = append(recs, g.close())
					}
				}
				if err := e.drive(t, m, recs, size); err != nil {
					t.Fatal(err)
				}
				got := e.relays(t, g.id)
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Fatalf("relays\n got %v\nwant %v", got, tc.want)
				}
			})
		}
	}
}

// TestPairingRule is the rule alone: pair returns each message's
// counterpart, and the stream records the first counterpart the waiting
// messages take.
func TestPairingRule(t *testing.T) {
	var s stream
	for _, step := range []struct {
		response    bool
		seq         int64
		counterpart int64 // 0: none yet
		first       int64 // the stream's first counterpart after the step; 0: none
	}{
		{false, 2, 0, 0},
		{false, 3, 0, 0},
		{true, 4, 3, 4},
		{true, 5, 3, 4},
		{false, 6, 5, 4},
		{false, 1, 5, 4}, // a late request does not move the latest back
		{true, 7, 6, 4},
	} {
		got := s.pair(step.response, step.seq)
		if got.V != step.counterpart || got.Valid != (step.counterpart != 0) || s.FirstCounterpartSeq.V != step.first {
			t.Fatalf("seq %d: counterpart %+v, first %+v; want %d, %d", step.seq, got, s.FirstCounterpartSeq, step.counterpart, step.first)
		}
	}
}
