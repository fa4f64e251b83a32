package ws

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// corkConn is a connection whose writes can be held back and sent together.
// The WebSocket library flushes each message with a write of its own;
// between cork and flush, writes are instead copied into one budgeted
// buffer (at most minBuf bytes; what does not fit goes out as it comes)
// that flush sends with one write, so a forwarder with several messages
// ready sends them with one system call. Writes from other goroutines
// meanwhile (a pong, a close) are held too, until the flush that follows:
// a forwarder corks only while it writes, never while it waits.
//
// sent counts the bytes the kernel took: a message whose last byte is
// within it crossed, which is how a failed flush still tells exactly what
// crossed.
type corkConn struct {
	net.Conn
	bufs   *buffers
	writes prometheus.Counter

	mu       sync.Mutex
	hold     *msgBuf // nil when not corked
	accepted uint64  // bytes written to the connection
	sent     uint64  // of which the kernel took
}

func newCorkConn(c net.Conn, bufs *buffers, writes prometheus.Counter) *corkConn {
	return &corkConn{Conn: c, bufs: bufs, writes: writes}
}

// Write holds p while corked if it fits, and writes it otherwise (after
// what is held, to keep the order).
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold != nil && c.hold.b.Available() >= len(p) {
		c.hold.b.Write(p)
		c.accepted += uint64(len(p))
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	n, err := c.write(p)
	c.accepted += uint64(n)
	return n, err
}

func (c *corkConn) write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent += uint64(n)
	c.writes.Inc()
	return n, err
}

func (c *corkConn) flushLocked() error {
	if c.hold == nil || c.hold.b.Len() == 0 {
		return nil
	}
	_, err := c.write(c.hold.b.Bytes())
	c.hold.b.Reset()
	return err
}

// cork starts holding writes back, if the budget has a buffer to spare
// right now (otherwise writes go out as they come).
func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold == nil {
		c.hold = c.bufs.tryGet()
	}
}

// flush sends what is held and stops holding.
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	if c.hold != nil {
		c.bufs.put(c.hold)
		c.hold = nil
	}
	return err
}

// holding reports whether writes are held back, unsent.
func (c *corkConn) holding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hold != nil && c.hold.b.Len() > 0
}

// counts returns the bytes written to the connection and those sent.
func (c *corkConn) counts() (accepted, sent uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted, c.sent
}

// Close closes the connection, then releases a held buffer. In that
// order: a write stuck in the kernel (a peer that stopped reading) holds
// mu, and only closing the connection makes it return.
func (c *corkConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	if c.hold != nil {
		c.bufs.put(c.hold)
		c.hold = nil
	}
	c.mu.Unlock()
	return err
}

// corkingWriter hands websocket.Accept the hijacked client connection
// wrapped in a corkConn.
type corkingWriter struct {
	http.ResponseWriter
	bufs   *buffers
	writes prometheus.Counter
	conn   *corkConn
}

// Hijack hijacks the connection and wraps it. The bufio.Writer net/http
// returns is empty (it flushed the 101 response first), so it can be
// pointed at the wrapper.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = newCorkConn(c, w.bufs, w.writes)
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}

// corkingClient is an HTTP client for one WebSocket dial whose connection
// is wrapped in a corkConn, returned by conn once dialled. A transport per
// dial: a shared one may hand a connection dialled for one request to
// another.
func corkingClient(bufs *buffers, writes prometheus.Counter) (_ *http.Client, conn func() *corkConn) {
	var cc *corkConn
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc = newCorkConn(c, bufs, writes)
		return cc, nil
	}
	return &http.Client{Transport: tr}, func() *corkConn { return cc }
}
