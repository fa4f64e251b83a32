// Package sv2sim is a small deterministic Stratum V2 pool and miner, with
// or without Noise, for tests and demos: the pool answers SetupConnection
// and OpenStandardMiningChannel, sends a job and its prev hash, and answers
// each SubmitSharesStandard with SubmitShares.Success, or SubmitShares.Error
// for nonces the pool's RejectEvery divides; both peers count the frames
// and bytes they exchange.
package sv2sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymeter/relaymeter/stratum/sv2"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// Stats counts what one peer exchanged: whole plaintext frames (header
// included) and the bytes on the wire (Noise handshake excluded).
type Stats struct {
	FramesOut, BytesOut, WireOut int64
	FramesIn, BytesIn, WireIn    int64
}

func (s *Stats) add(o Stats) {
	s.FramesOut += o.FramesOut
	s.BytesOut += o.BytesOut
	s.WireOut += o.WireOut
	s.FramesIn += o.FramesIn
	s.BytesIn += o.BytesIn
	s.WireIn += o.WireIn
}

// countingConn counts the bytes read and written on a net.Conn.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// Conn is one Sv2 peer connection, plaintext or Noise.
type Conn struct {
	raw      *countingConn
	rw       io.ReadWriter
	r        *sv2.Reader
	wmu      sync.Mutex
	hsIn     int64 // wire bytes of the handshake, excluded from Stats
	hsOut    int64
	frameOut atomic.Int64
	bytesOut atomic.Int64
	frameIn  atomic.Int64
	bytesIn  atomic.Int64
}

func newConn(ctx context.Context, raw net.Conn, cfg *noise.Config, server bool) (*Conn, error) {
	cc := &countingConn{Conn: raw}
	c := &Conn{raw: cc, rw: cc}
	if cfg != nil {
		var nc *noise.Conn
		var err error
		if server {
			nc, err = noise.Server(cc, *cfg)
		} else {
			nc, err = noise.Client(cc, *cfg)
		}
		if err != nil {
			return nil, err
		}
		if err := nc.Handshake(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("sv2sim: noise handshake: %w", err)
		}
		c.rw = nc
		c.hsIn, c.hsOut = cc.in.Load(), cc.out.Load()
	}
	c.r = sv2.NewReader(c.rw, 0)
	return c, nil
}

// Dial connects to addr as a client, with Noise when cfg is not nil.
func Dial(ctx context.Context, addr string, cfg *noise.Config) (*Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sv2sim: dial: %w", err)
	}
	return newConn(ctx, raw, cfg, false)
}

// Send writes m as one frame.
func (c *Conn) Send(m sv2.Message) error {
	frame, err := sv2.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	return c.WriteFrame(frame)
}

// WriteFrame writes whole frames as they are.
func (c *Conn) WriteFrame(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.rw.Write(frame); err != nil {
		return fmt.Errorf("sv2sim: write: %w", err)
	}
	c.frameOut.Add(1)
	c.bytesOut.Add(int64(len(frame)))
	return nil
}

// Raw is the underlying connection, for writing bytes outside any frame.
func (c *Conn) Raw() net.Conn { return c.raw.Conn }

// Recv reads the next frame and decodes it (unknown types as
// *sv2.RawMessage).
func (c *Conn) Recv() (sv2.Message, error) {
	h, payload, err := c.r.Next()
	if err != nil {
		return nil, err
	}
	c.frameIn.Add(1)
	c.bytesIn.Add(int64(sv2.HeaderLen + len(payload)))
	return sv2.ParseMessage(h, payload)
}

// Stats returns what the connection exchanged so far.
func (c *Conn) Stats() Stats {
	return Stats{
		FramesOut: c.frameOut.Load(), BytesOut: c.bytesOut.Load(), WireOut: c.raw.out.Load() - c.hsOut,
		FramesIn: c.frameIn.Load(), BytesIn: c.bytesIn.Load(), WireIn: c.raw.in.Load() - c.hsIn,
	}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.raw.Close() }

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Noise is the responder configuration; nil means plaintext.
	Noise *noise.Config
	// RejectEvery rejects, with SubmitShares.Error "difficulty-too-low",
	// the shares whose nonce it divides; 0 accepts every share.
	RejectEvery uint32
	// ShareValue is each accepted share's new_shares_sum; 0 means 1.
	ShareValue uint64
}

// Pool is a deterministic Sv2 mining pool.
type Pool struct {
	cfg    PoolConfig
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	stats  Stats // of the connections closed
	nextCh atomic.Uint32
}

// StartPool listens on a loopback port and serves until Close.
func StartPool(cfg PoolConfig) (*Pool, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sv2sim: pool listen: %w", err)
	}
	if cfg.ShareValue == 0 {
		cfg.ShareValue = 1
	}
	p := &Pool{cfg: cfg, ln: ln, conns: map[*Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the pool's host:port.
func (p *Pool) Addr() string { return p.ln.Addr().String() }

// Stats sums what every connection of the pool exchanged.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	for c := range p.conns {
		s.add(c.Stats())
	}
	return s
}

// Reconnect sends Reconnect{new_host: host, new_port: port} to every
// connection of the pool, as a pool moving its miners elsewhere does, and
// returns how many it went to.
func (p *Pool) Reconnect(host string, port uint16) int {
	p.mu.Lock()
	conns := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.Send(&sv2.Reconnect{NewHost: host, NewPort: port}) == nil {
			n++
		}
	}
	return n
}

// Conns is the number of connections open.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops the pool and its connections.
func (p *Pool) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Pool) accept() {
	defer p.wg.Done()
	for {
		raw, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := newConn(ctx, raw, p.cfg.Noise, true)
			cancel()
			if err != nil {
				_ = raw.Close()
				return
			}
			p.mu.Lock()
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			_ = p.serve(c)
			_ = c.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.stats.add(c.Stats())
			p.mu.Unlock()
		}()
	}
}

// serve answers one miner until it goes away.
func (p *Pool) serve(c *Conn) error {
	for {
		m, err := c.Recv()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *sv2.SetupConnection:
			if m.Protocol != 0 {
				if err := c.Send(&sv2.SetupConnectionError{ErrorCode: "unsupported-protocol"}); err != nil {
					return err
				}
				return nil
			}
			if err := c.Send(&sv2.SetupConnectionSuccess{UsedVersion: 2}); err != nil {
				return err
			}
		case *sv2.OpenStandardMiningChannel:
			ch := p.nextCh.Add(1)
			var target sv2.U256
			for i := range target {
				target[i] = 0xff
			}
			ntime := uint32(1_700_000_000)
			for _, out := range []sv2.Message{
				&sv2.OpenStandardMiningChannelSuccess{RequestID: m.RequestID, ChannelID: ch, Target: target, ExtranoncePrefix: sv2.Bytes{0, 0, 0, byte(ch)}},
				&sv2.NewMiningJob{ChannelID: ch, JobID: 1, Version: 0x20000000},
				&sv2.SetNewPrevHash{ChannelID: ch, JobID: 1, MinNtime: ntime, Nbits: 0x1d00ffff},
			} {
				if err := c.Send(out); err != nil {
					return err
				}
			}
		case *sv2.SubmitSharesStandard:
			var out sv2.Message = &sv2.SubmitSharesSuccess{ChannelID: m.ChannelID, LastSequenceNumber: m.SequenceNumber,
				NewSubmitsAcceptedCount: 1, NewSharesSum: p.cfg.ShareValue}
			if p.cfg.RejectEvery != 0 && m.Nonce%p.cfg.RejectEvery == 0 {
				out = &sv2.SubmitSharesError{ChannelID: m.ChannelID, SequenceNumber: m.SequenceNumber, ErrorCode: "difficulty-too-low"}
			}
			if err := c.Send(out); err != nil {
				return err
			}
		}
	}
}

// MinerConfig configures RunMiner.
type MinerConfig struct {
	Addr string
	// Noise is the initiator configuration; nil means plaintext.
	Noise        *noise.Config
	UserIdentity string
	// Shares is the number of shares submitted, nonces 1 to Shares.
	Shares int
	// MoreUsers opens one more channel per user identity on the same
	// connection, after the first; each channel submits Shares shares.
	MoreUsers []string
	// DeviceID is the SetupConnection's device_id; "" means "d1".
	DeviceID string
	// Mined, when set, is called after each share's answer with the number
	// answered so far (tests use it to act mid-run).
	Mined func(n int)
}

// MinerResult is what a miner run saw.
type MinerResult struct {
	Accepted, Rejected int
	Stats              Stats
	// Reconnect is the Reconnect that ended the run early, if one came.
	Reconnect *sv2.Reconnect
	// ByChannel is each channel's outcome, in the order opened.
	ByChannel []ChannelResult
}

// ChannelResult is what one channel of a miner run saw.
type ChannelResult struct {
	User               string
	Channel            uint32
	Accepted, Rejected int
}

// ErrorReply is an *.Error answer the miner got.
type ErrorReply struct {
	Message string // the message name, e.g. "OpenMiningChannel.Error"
	Code    string
}

func (e *ErrorReply) Error() string { return fmt.Sprintf("sv2sim: %s %q", e.Message, e.Code) }

// RunMiner connects, sets up a Mining connection, opens one standard
// channel (and one per MoreUsers), waits for its job and prev hash, submits
// cfg.Shares shares a channel one at a time and closes.
func RunMiner(ctx context.Context, cfg MinerConfig) (res MinerResult, err error) {
	c, err := Dial(ctx, cfg.Addr, cfg.Noise)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.raw.SetDeadline(dl)
	}
	defer func() { res.Stats = c.Stats() }()
	if cfg.DeviceID == "" {
		cfg.DeviceID = "d1"
	}
	if err := c.Send(&sv2.SetupConnection{Protocol: 0, MinVersion: 2, MaxVersion: 2, EndpointHost: "pool", EndpointPort: 3333,
		Vendor: "sv2sim", HardwareVersion: "sim", Firmware: "1", DeviceID: cfg.DeviceID}); err != nil {
		return res, err
	}
	m, err := c.Recv()
	if err != nil {
		return res, fmt.Errorf("sv2sim: reading SetupConnection answer: %w", err)
	}
	switch m := m.(type) {
	case *sv2.SetupConnectionSuccess:
	case *sv2.SetupConnectionError:
		return res, &ErrorReply{Message: "SetupConnection.Error", Code: m.ErrorCode}
	default:
		return res, fmt.Errorf("sv2sim: unexpected %T answering SetupConnection", m)
	}
	users := append([]string{cfg.UserIdentity}, cfg.MoreUsers...)
	channels := make([]uint32, len(users))
	for u, user := range users {
		if err := c.Send(&sv2.OpenStandardMiningChannel{RequestID: uint32(7 + u), UserIdentity: user, NominalHashRate: 1e12}); err != nil {
			return res, err
		}
		var gotJob, gotPrev bool
		for !gotJob || !gotPrev || channels[u] == 0 {
			m, err := c.Recv()
			if err != nil {
				return res, fmt.Errorf("sv2sim: waiting for a channel and job: %w", err)
			}
			switch m := m.(type) {
			case *sv2.OpenStandardMiningChannelSuccess:
				channels[u] = m.ChannelID
			case *sv2.OpenMiningChannelError:
				return res, &ErrorReply{Message: "OpenMiningChannel.Error", Code: m.ErrorCode}
			case *sv2.NewMiningJob:
				gotJob = true
			case *sv2.SetNewPrevHash:
				gotPrev = true
			case *sv2.Reconnect:
				res.Reconnect = m
				return res, nil
			}
		}
	}
	res.ByChannel = make([]ChannelResult, len(users))
	n := 0
	for u, channel := range channels {
		cr := &res.ByChannel[u]
		cr.User, cr.Channel = users[u], channel
		for i := 1; i <= cfg.Shares; i++ {
			if err := c.Send(&sv2.SubmitSharesStandard{ChannelID: channel, SequenceNumber: uint32(i), JobID: 1,
				Nonce: uint32(i), Ntime: 1_700_000_000, Version: 0x20000000}); err != nil {
				return res, err
			}
			m, err := c.Recv()
			if err != nil {
				return res, fmt.Errorf("sv2sim: waiting for share %d's answer: %w", i, err)
			}
			switch m := m.(type) {
			case *sv2.SubmitSharesSuccess:
				res.Accepted++
				cr.Accepted++
			case *sv2.SubmitSharesError:
				res.Rejected++
				cr.Rejected++
			case *sv2.Reconnect:
				res.Reconnect = m
				return res, nil
			default:
				return res, fmt.Errorf("sv2sim: unexpected %T answering share %d", m, i)
			}
			n++
			if cfg.Mined != nil {
				cfg.Mined(n)
			}
		}
	}
	return res, nil
}
