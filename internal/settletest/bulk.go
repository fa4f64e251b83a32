package settletest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Bulk builds, through the same writes as New, a ledger of volume: streams
// streams (stream i of application app<i%25>, supplier sup<i%7>, weight 1)
// each sending a request every second for windows windows of 20 s, all
// settled but the last two (one CLOSED, the last OPEN) when settle is
// true, none of them otherwise (all CLOSED but the last). With 50 streams
// and 100 windows: 100,000 messages, 4,900 settled sessions and as many
// transactions. It takes a minute or two.
func Bulk(t testing.TB, pool *pgxpool.Pool, streams, windows int, settle bool) *Ledger {
	t.Helper()
	l := configured(t, pool)
	l.clock = At(float64(20*windows + 1000))
	ids := make([]uuid.UUID, streams)
	for i := range ids {
		ids[i] = uuid.MustParse(fmt.Sprintf("01950000-0000-7000-8000-%012x", 0x100+i))
		l.open(ids[i], fmt.Sprintf("app%d", i%25), fmt.Sprintf("sup%d", i%7), 1)
	}
	seq := int64(0)
	for w := range windows {
		h := int64(1 + SessionBlocks*w)
		l.window(h, w < windows-1)
		var msgs []msg
		for s := range 20 {
			seq++
			for i, id := range ids {
				msgs = append(msgs, msg{id, seq, float64(20*w+s) + float64(i)/float64(2*streams), req, 0, 1})
			}
		}
		l.commit(msgs)
		if w%20 == 19 {
			// As autovacuum would: it summarizes the BRIN index of
			// messages.observed_at, by which settlement reads.
			if _, err := pool.Exec(context.Background(), `VACUUM ANALYZE messages`); err != nil {
				t.Fatal(err)
			}
			if settle {
				l.Settle(int64(SessionBlocks*(w-1)) + 1)
			}
		}
	}
	if settle {
		l.Settle(int64(SessionBlocks*(windows-2)) + 1)
	}
	return l
}
