package meter

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// delimiterTraffic fabricates n streams of the "delim" service whose
// payloads are random cuts of CRLF-delimited records, in both directions,
// interleaved. It returns the records, the units a whole run must bill per
// stream (CRLFs counted in each direction's concatenated bytes) and how
// many streams end with a partial record.
func delimiterTraffic(n, msgs int, seed uint64) (out []kafka.Message, want map[string]int64, partial int, records int64) {
	rng := rand.New(rand.NewPCG(seed, 10))
	per := make([][]kafka.Message, n)
	want = map[string]int64{}
	for i := range n {
		g := newGen(1000 + i)
		per[i] = append(per[i], g.open("delim", "app", "sup"))
		var sent [2][]byte
		for j := range msgs {
			d, k := up, 0
			if j%2 == 1 {
				d, k = down, 1
			}
			var b strings.Builder
			for range rng.IntN(6) {
				switch rng.IntN(4) {
				case 0:
					b.WriteString("\r\n")
				case 1:
					b.WriteByte('\r')
				case 2:
					b.WriteByte('\n')
				default:
					b.WriteString("xy")
				}
			}
			p := b.String()
			sent[k] = append(sent[k], p...)
			per[i] = append(per[i], g.msg(d, event.Role(1+2*(j%2)), uint64(len(p)+4), p))
		}
		per[i] = append(per[i], g.close())
		want[uuidString(g.id)] = int64(bytes.Count(sent[0], []byte("\r\n")) + bytes.Count(sent[1], []byte("\r\n")))
		if len(afterLast(sent[0])) > 0 || len(afterLast(sent[1])) > 0 {
			partial++
		}
	}
	for len(out) < n*(msgs+2) {
		i := rng.IntN(n)
		if len(per[i]) > 0 {
			out = append(out, per[i][0])
			per[i] = per[i][1:]
		}
	}
	return out, want, partial, int64(len(out))
}

// TestDelimiterCrash meters delimiter streams whose records are split
// across messages while crashing the meter between and inside batches:
// the carried partial records are committed with the batches, so every
// stream bills exactly the records of its bytes, as an uninterrupted run
// does, and reports the same remainders.
func TestDelimiterCrash(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	if err := e.store.PutService(ctx, ledger.Service{ID: "delim", Protocol: "WEBSOCKET_JSONRPC",
		Policy: ledger.Policy{Name: "delimiter", Params: json.RawMessage(`{"delimiter": "\r\n"}`)}}); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const streams = 12
	recs, want, partial, total := delimiterTraffic(streams, 150, seed)
	e.produce(t, recs...)

	crashes := 0
	for round := 0; e.committed(t) < total; round++ {
		if round == 200 {
			t.Fatalf("not done after %d rounds: %d of %d records", round, e.committed(t), total)
		}
		m := e.meter(t, func(c *Config) { c.BatchSize = 20 + rand.IntN(80) })
		ctx, cancel := context.WithCancel(context.Background())
		m.afterCommit = func(int, *ledger.Batch) {
			if rand.IntN(3) == 0 {
				cancel()
			}
		}
		timer := time.AfterFunc(time.Duration(rand.IntN(150))*time.Millisecond, cancel)
		before := e.committed(t)
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		for ctx.Err() == nil && e.committed(t) < total {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		timer.Stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c := e.committed(t); c < total && c > before {
			crashes++
		}
	}
	t.Logf("%d records, %d crashes mid-stream", total, crashes)
	if crashes < 3 {
		t.Fatalf("only %d crashes happened mid-stream; the test proved little", crashes)
	}
	var all int64
	for id, units := range want {
		all += units
		if got := e.count(t, `SELECT relays FROM streams WHERE stream_id = $1`, id); got != units {
			t.Errorf("stream %s: %d relays, want %d", id, got, units)
		}
		if got := e.count(t, `SELECT coalesce(sum(units), 0) FROM messages WHERE stream_id = $1`, id); got != units {
			t.Errorf("stream %s: messages hold %d units, want %d", id, got, units)
		}
	}
	if got := e.count(t, `SELECT coalesce(sum(relays), 0) FROM usage_minutes`); got != all {
		t.Errorf("usage_minutes: %d relays, want %d", got, all)
	}
	if got := e.count(t, `SELECT count(*) FROM findings WHERE kind <> 'remainder'`); got != 0 {
		t.Errorf("%d findings other than remainders", got)
	}
	if got := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'remainder'`); got != int64(partial) {
		t.Errorf("%d remainder findings, want %d (streams ending with a partial record)", got, partial)
	}
	if got := e.count(t, `SELECT count(*) FROM streams WHERE complete AND closed_at IS NOT NULL`); got != streams {
		t.Errorf("%d complete streams, want %d", got, streams)
	}
}

// afterLast returns b after its last CRLF (a CRLF cannot overlap another).
func afterLast(b []byte) []byte {
	if i := bytes.LastIndex(b, []byte("\r\n")); i >= 0 {
		return b[i+2:]
	}
	return b
}
