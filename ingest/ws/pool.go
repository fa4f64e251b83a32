package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// pool is the upstreams of one route. A new client goes to the healthy
// upstream with the fewest clients (the one after the last pick on a tie);
// a client whose upstream is lost or turns unhealthy moves to another.
//
// With two upstreams or more, each is watched over a connection of the
// pool's own, which belongs to no stream and is not recorded: every
// HealthInterval it asks eth_blockNumber, and an upstream that does not
// answer within HealthTimeout, cannot be dialled, or whose head is more than
// MaxHeadLag blocks behind the best answer, is unhealthy until it answers
// again within the lag. A pool of one is never watched: its upstream is
// always picked, as before pools.
type pool struct {
	members []*member
	next    atomic.Uint64 // round-robin start for ties
	maxLag  uint64
	log     *slog.Logger
	service string
}

// member is one upstream of a pool.
type member struct {
	upstream string // as configured: may hold credentials
	redacted string // scheme and host only, for logs and events
	tls      bool
	healthy  atomic.Bool
	head     atomic.Uint64 // its last eth_blockNumber
	checked  atomic.Bool   // it has been checked once: until then it is healthy
	answered atomic.Bool   // the last check was answered
	clients  atomic.Int64

	mu      sync.Mutex
	proxies map[*proxy]struct{} // the clients on it, to move when it turns unhealthy
}

// splitUpstreams is the comma-separated upstream URLs of s.
func splitUpstreams(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func newPool(service, upstreams string, maxLag uint64, log *slog.Logger) (*pool, error) {
	urls := splitUpstreams(upstreams)
	if len(urls) == 0 {
		return nil, errors.New("no upstream")
	}
	p := &pool{maxLag: maxLag, log: log, service: service}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %d is not a URL", i+1) // the error would echo the URL
		}
		if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
			return nil, fmt.Errorf("upstream %s: want a ws:// or wss:// URL with a host", redact(u))
		}
		m := &member{upstream: raw, redacted: redact(u), tls: u.Scheme == "wss", proxies: map[*proxy]struct{}{}}
		m.healthy.Store(true) // until a check says otherwise
		p.members = append(p.members, m)
	}
	return p, nil
}

// failover reports whether a client can move: the pool has another
// upstream.
func (p *pool) failover() bool { return len(p.members) > 1 }

// pick is the healthy upstream with the fewest clients, skipping those in
// tried; nil if there is none.
func (p *pool) pick(tried []*member) *member {
	n := len(p.members)
	start := int(p.next.Add(1) % uint64(n))
	var best *member
	for i := range n {
		m := p.members[(start+i)%n]
		if !m.healthy.Load() || contains(tried, m) {
			continue
		}
		if best == nil || m.clients.Load() < best.clients.Load() {
			best = m
		}
	}
	return best
}

func contains(ms []*member, m *member) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func (m *member) join(p *proxy) {
	m.clients.Add(1)
	m.mu.Lock()
	m.proxies[p] = struct{}{}
	m.mu.Unlock()
}

func (m *member) leave(p *proxy) {
	m.clients.Add(-1)
	m.mu.Lock()
	delete(m.proxies, p)
	m.mu.Unlock()
}

// watch checks every member until ctx ends, moving the clients of those
// that turn unhealthy.
func (p *pool) watch(ctx context.Context, every, timeout time.Duration, onChange func(m *member, healthy bool)) {
	if !p.failover() {
		return
	}
	var wg sync.WaitGroup
	heads := make(chan struct{}, len(p.members))
	for _, m := range p.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.check(ctx, m, every, timeout, heads)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-heads:
		}
		p.judge(onChange)
	}
}

// judge marks unhealthy the members that lag the best head by more than
// maxLag or did not answer their last check, healthy the others.
func (p *pool) judge(onChange func(m *member, healthy bool)) {
	var best uint64
	for _, m := range p.members {
		if m.answered.Load() {
			best = max(best, m.head.Load())
		}
	}
	for _, m := range p.members {
		if !m.checked.Load() {
			continue
		}
		h := m.head.Load()
		ok := m.answered.Load() && h+p.maxLag >= best
		if m.healthy.Swap(ok) != ok {
			p.log.Warn("ws: upstream health changed", "service", p.service, "upstream", m.redacted, "healthy", ok, "head", h, "best_head", best)
			if onChange != nil {
				onChange(m, ok)
			}
		}
	}
}

// check polls m's head over a connection of its own, storing 0 while m
// cannot answer, and signals heads after each poll.
func (p *pool) check(ctx context.Context, m *member, every, timeout time.Duration, heads chan<- struct{}) {
	var conn *websocket.Conn
	defer func() {
		if conn != nil {
			conn.CloseNow()
		}
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for id := 1; ; id++ {
		head, err := p.poll(ctx, m, &conn, id, timeout)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.log.Debug("ws: upstream health check failed", "service", p.service, "upstream", m.redacted, "err", scrubURL(err, m.upstream, m.redacted))
			if conn != nil {
				conn.CloseNow()
				conn = nil
			}
		}
		m.head.Store(head)
		m.answered.Store(err == nil)
		m.checked.Store(true)
		select {
		case heads <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll asks m for eth_blockNumber within timeout, dialling first if conn
// is nil.
func (p *pool) poll(ctx context.Context, m *member, conn **websocket.Conn, id int, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if *conn == nil {
		c, _, err := websocket.Dial(ctx, m.upstream, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return 0, err
		}
		c.SetReadLimit(1 << 16)
		*conn = c
	}
	req := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"eth_blockNumber","params":[]}`
	if err := (*conn).Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		return 0, err
	}
	for {
		_, data, err := (*conn).Read(ctx)
		if err != nil {
			return 0, err
		}
		var res struct {
			ID     int
			Result string
			Error  json.RawMessage
		}
		if json.Unmarshal(data, &res) != nil || res.ID != id {
			continue // a late answer to an earlier poll
		}
		if len(res.Error) > 0 {
			return 0, fmt.Errorf("eth_blockNumber: %s", res.Error)
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(res.Result, "0x"), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("eth_blockNumber: bad result %q", res.Result)
		}
		return n, nil
	}
}

// scrubURL is err's text without upstream, which may hold keys.
func scrubURL(err error, upstream, redacted string) string {
	return (&route{upstream: upstream, redacted: redacted}).scrub(err)
}
