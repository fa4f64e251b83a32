package meter

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestPairing runs the pairing rule through the meter into Postgres: each
// script is a stream (q request, r response, n notification, c close; the
// StreamOpened is seq 1), and the relays must pair as want says, whether
// the stream arrives in one batch or in batches of 1 or 2 records (the
// waiting relays then are filled in by UPDATE).
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
				rows, err := e.pool.Query(context.Background(), `SELECT seq, coalesce(request_seq::text, '-'),
					coalesce(response_seq::text, '-'), unpaired FROM relays WHERE stream_id = $1 ORDER BY seq`, g.id)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for rows.Next() {
					var seq int64
					var req, resp string
					var unpaired bool
					if err := rows.Scan(&seq, &req, &resp, &unpaired); err != nil {
						t.Fatal(err)
					}
					s := fmt.Sprintf("%d:%s/%s", seq, req, resp)
					if unpaired {
						s += "!"
					}
					got = append(got, s)
				}
				if rows.Err() != nil {
					t.Fatal(rows.Err())
				}
				sort.Strings(got)
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Fatalf("relays\n got %v\nwant %v", got, tc.want)
				}
			})
		}
	}
}

// TestPairingRule is the rule alone: observe returns each message's pair
// and whether it completes waiting relays.
func TestPairingRule(t *testing.T) {
	var p pairing
	steps := []struct {
		response      bool
		seq           int64
		req, resp     int64
		fills, waitng bool
	}{
		{false, 2, 2, 0, false, true},
		{false, 3, 3, 0, false, true},
		{true, 4, 3, 4, true, false},
		{true, 5, 3, 5, false, false},
		{false, 6, 6, 5, false, false},
	}
	for _, s := range steps {
		req, resp, fills := p.observe(s.response, s.seq)
		if req != s.req || resp != s.resp || fills != s.fills || p.waiting() != s.waitng {
			t.Fatalf("seq %d: got %d/%d fills %v waiting %v, want %d/%d %v %v",
				s.seq, req, resp, fills, p.waiting(), s.req, s.resp, s.fills, s.waitng)
		}
	}
}
