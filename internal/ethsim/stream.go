package ethsim

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// StreamKind is the subscription kind of a test stream: a finite run of
// numbered notifications at a fixed rate, for measuring subscription
// fan-out through a proxy. Subscribe with
//
//	{"method":"eth_subscribe","params":["ethsim_stream",{"rate":200,"count":2000}]}
//
// and the node sends count notifications, one every 1/rate seconds from
// the moment the subscribe response was written, each carrying a
// StreamItem. A node never sends a stream's notification before the
// subscribe response, and sends each one exactly once, in order, until the
// stream is complete, unsubscribed, or the connection ends.
const StreamKind = "ethsim_stream"

// StreamParams are the second eth_subscribe parameter of a StreamKind
// subscription.
type StreamParams struct {
	// Rate is notifications per second, in (0, 1e6].
	Rate float64 `json:"rate"`
	// Count is how many notifications the stream sends (> 0).
	Count int64 `json:"count"`
}

func (p StreamParams) validate() error {
	if !(p.Rate > 0 && p.Rate <= 1e6) || p.Count <= 0 {
		return errors.New("ethsim: stream rate must be in (0, 1e6] and count > 0")
	}
	return nil
}

// StreamItem is the result of one StreamKind notification.
type StreamItem struct {
	// Seq numbers the stream's notifications from 1 to Count.
	Seq int64 `json:"seq"`
	// Due is when the notification was scheduled, in Unix nanoseconds. A
	// notification sent late (the connection pushed back) keeps its
	// scheduled time, so a receiver on the same clock measures the whole
	// delay, queueing included.
	Due int64 `json:"due"`
}

// connCtx returns the connection's context (a background one for a conn
// made without a socket, as unit tests do).
func (c *conn) connCtx() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

// stream sends the notifications of StreamKind subscription id on c until
// it is complete or ctx ends.
func (n *Node) stream(ctx context.Context, c *conn, id string, p StreamParams) {
	interval := time.Duration(float64(time.Second) / p.Rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	prefix := []byte(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"` + id + `","result":{"seq":`)
	var buf []byte
	for seq := int64(1); seq <= p.Count; seq++ {
		due := start.Add(time.Duration(seq-1) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		buf = append(buf[:0], prefix...)
		buf = strconv.AppendInt(buf, seq, 10)
		buf = append(buf, `,"due":`...)
		buf = strconv.AppendInt(buf, due.UnixNano(), 10)
		buf = append(buf, "}}}"...)
		// Write under the connection's context: a stream stopped mid-write
		// must not close the connection (as a cancelled write does).
		if err := c.send(c.connCtx(), buf); err != nil {
			n.cfg.Logger.Debug("ethsim: stream write", "subscription", id, "seq", seq, "err", err)
			return
		}
	}
}
