package meter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// TestFindings meters streams with what the meter must notice and not paper
// over: a gap, a broken chain, a stream never opened, an undecodable record,
// a duplicate that differs from what was metered. Each becomes a finding and
// metering goes on.
func TestFindings(t *testing.T) {
	for _, size := range []int{1, 100} {
		t.Run(fmt.Sprint("batch", size), func(t *testing.T) {
			e := newEnv(t, 0)
			e.services(t)
			m := e.meter(t, nil)
			gap, chain, orphan, dup := newGen(1), newGen(2), newGen(3), newGen(4)
			var recs []kafka.Message
			recs = append(recs, gap.open("eth", "a", "s"), gap.req())
			gap.resp() // lost: seq 3 never arrives
			recs = append(recs, gap.req(), gap.close())

			recs = append(recs, chain.open("eth", "a", "s"), chain.req())
			chain.chain[0] ^= 1 // seq 3 sealed on a wrong previous chain
			recs = append(recs, chain.resp(), chain.close())

			orphan.open("eth", "a", "s") // its StreamOpened is lost
			recs = append(recs, orphan.req(), orphan.resp(), orphan.close())

			recs = append(recs, kafka.Message{Value: []byte("not an event")})

			recs = append(recs, dup.open("eth", "a", "s"), dup.req())
			changed := *dup // same seq, different content
			changed.seq--
			changed.chain = [32]byte{}
			recs = append(recs, changed.msg(up, event.Role_REQUEST, 999, ""), dup.resp())

			if err := e.drive(t, m, recs, size); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rows, err := e.pool.Query(ctx, `SELECT kind, coalesce(seq, 0), coalesce(kafka_offset, -1), detail FROM findings
				ORDER BY kind, seq`)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var kind, detail string
				var seq, off int64
				if err := rows.Scan(&kind, &seq, &off, &detail); err != nil {
					t.Fatal(err)
				}
				s := fmt.Sprintf("%s@%d", kind, seq)
				if off >= 0 {
					s += fmt.Sprintf(" offset %d", off)
				}
				if kind == FindingGap {
					s += " " + detail
				}
				got = append(got, s)
			}
			want := []string{
				"chain_mismatch@3",
				"count_mismatch@5",
				"duplicate_mismatch@2",
				"gap@1 seqs 1 to 1 missing (got seq 2)",
				"gap@3 seqs 3 to 3 missing (got seq 4)",
				"quarantined@0 offset 11",
				"unknown_stream@2",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("findings\n got %q\nwant %q", got, want)
			}
			for _, c := range []struct {
				q    string
				args []any
				want int64
			}{
				// metering went on after each finding
				{`SELECT count(*) FROM messages`, nil, 2 + 2 + 2 + 2},
				{`SELECT last_seq FROM streams WHERE stream_id = $1`, []any{gap.id}, 5},
				{`SELECT count(*) FROM streams WHERE NOT complete`, nil, 1},
				{`SELECT count(*) FROM streams WHERE complete`, nil, 2},
				{`SELECT count(*) FROM streams s JOIN policies p ON p.id = s.policy_id WHERE stream_id = $1
					AND service = 'unknown' AND application = 'unknown' AND p.name = 'message'`, []any{orphan.id}, 1},
				{`SELECT count(*) FROM quarantine WHERE kafka_offset = 11 AND record_value = 'not an event'`, nil, 1},
				{`SELECT duplicates FROM streams WHERE stream_id = $1`, []any{dup.id}, 1},
				{`SELECT sum(next_offset) FROM consumer_offsets`, nil, int64(len(recs))},
			} {
				if got := e.count(t, c.q, c.args...); got != c.want {
					t.Errorf("%s = %d, want %d", c.q, got, c.want)
				}
			}
		})
	}
}

// TestUnknownMajor stops the partition at a record of a schema major this
// build does not know: Run returns the typed error, what came before is
// committed, and the stored offset stays at that record, run after run.
func TestUnknownMajor(t *testing.T) {
	e := newEnv(t, 1)
	e.services(t)
	g := newGen(1)
	future, err := proto.Marshal(&event.Event{SchemaMajor: 2, StreamId: g.id[:], Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	recs := []kafka.Message{g.open("eth", "a", "s"), g.req(), g.resp(), {Key: g.id[:], Value: future}, g.req()}
	e.produce(t, recs...)
	for run := range 2 {
		err := e.meter(t, nil).Run(context.Background())
		var pe *PartitionError
		if !errors.Is(err, event.ErrUnknownMajor) || !errors.As(err, &pe) || pe.Offset != 3 || pe.Partition != 0 {
			t.Fatalf("run %d: Run = %v, want a *PartitionError at offset 3 wrapping event.ErrUnknownMajor", run, err)
		}
		if got := e.committed(t); got != 3 {
			t.Fatalf("run %d: stored offset %d, want 3", run, got)
		}
		if n := e.count(t, `SELECT count(*) FROM messages`); n != 2 {
			t.Fatalf("run %d: %d messages, want 2", run, n)
		}
	}
}
