// Package beamsim is a small deterministic Beam stratum node and miner for
// tests and demos: the node accepts logins with known api keys, answers
// with a nonce prefix and the current job, accepts each solution to the
// current job with a new job, and closes as the real node does (after a
// failed login, a bad nonce prefix, a line it cannot parse or one over
// beam.MaxLineSize). Either peer runs over TLS when given a configuration.
package beamsim

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relaymeter/relaymeter/stratum/beam"
)

// NoncePrefix is the prefix the node gives every connection.
const NoncePrefix = "0a0b"

// Counts are lines and bytes (LF included) a peer sent and received.
type Counts struct {
	LinesIn, BytesIn, LinesOut, BytesOut uint64
}

// Node is a Beam stratum node.
type Node struct {
	ln   net.Listener
	keys map[string]bool
	wg   sync.WaitGroup

	// Accepted counts connections accepted.
	Accepted atomic.Int64
	linesIn  atomic.Uint64
	bytesIn  atomic.Uint64
	linesOut atomic.Uint64
	bytesOut atomic.Uint64
}

// StartNode listens on a loopback port, with TLS when cfg is not nil, and
// accepts the given api keys.
func StartNode(cfg *tls.Config, keys ...string) (*Node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("beamsim: listen: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	n := &Node{ln: ln, keys: map[string]bool{}}
	for _, k := range keys {
		n.keys[k] = true
	}
	n.wg.Add(1)
	go n.serve()
	return n, nil
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Counts returns what the node has received (In) and sent (Out).
func (n *Node) Counts() Counts {
	return Counts{LinesIn: n.linesIn.Load(), BytesIn: n.bytesIn.Load(), LinesOut: n.linesOut.Load(), BytesOut: n.bytesOut.Load()}
}

// Close stops the node and waits for its connections to end.
func (n *Node) Close() error {
	err := n.ln.Close()
	n.wg.Wait()
	return err
}

func (n *Node) serve() {
	defer n.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.Accepted.Add(1)
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			n.session(c)
		}()
	}
}

// session runs one miner connection until it ends or breaks a rule.
func (n *Node) session(c net.Conn) {
	r := beam.NewReader(c)
	w := beam.NewWriter(&counting{w: c, lines: &n.linesOut, bytes: &n.bytesOut})
	job := 0
	loggedIn := false
	sendJob := func() error {
		job++
		return w.WriteMessage(&beam.Job{ID: strconv.Itoa(job), Input: strings.Repeat(fmt.Sprintf("%02x", job%256), 32), Difficulty: 1, Height: uint64(1000 + job)})
	}
	for {
		line, err := r.ReadLine()
		if err != nil || r.Unterminated() {
			return
		}
		n.linesIn.Add(1)
		n.bytesIn.Add(uint64(len(line) + 1))
		m, err := beam.Decode(line)
		if err != nil {
			return // unparsable, empty id, unknown method: dropped, no answer
		}
		switch m := m.(type) {
		case *beam.Login:
			if !n.keys[m.APIKey] {
				w.WriteMessage(&beam.Result{ID: m.ID, Code: beam.CodeLoginFailed, Description: beam.CodeLoginFailed.Description()})
				return
			}
			loggedIn = true
			if w.WriteMessage(&beam.Result{ID: m.ID, Code: beam.CodeLoginOK, Description: "Login successful", NoncePrefix: NoncePrefix}) != nil || sendJob() != nil {
				return
			}
		case *beam.Solution:
			if !loggedIn {
				return
			}
			if !strings.HasPrefix(m.Nonce, NoncePrefix) {
				w.WriteMessage(&beam.Result{ID: m.ID, Code: beam.CodeRejected, Description: beam.CodeRejected.Description()})
				return
			}
			code := beam.CodeAccepted
			if m.ID != strconv.Itoa(job) {
				code = beam.CodeExpired
			}
			if w.WriteMessage(&beam.Result{ID: m.ID, Code: code, Description: code.Description()}) != nil {
				return
			}
			if code == beam.CodeAccepted && sendJob() != nil {
				return
			}
		}
	}
}

// counting counts the lines and bytes written through it.
type counting struct {
	w            interface{ Write([]byte) (int, error) }
	lines, bytes *atomic.Uint64
}

func (c *counting) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.bytes.Add(uint64(n))
	if err == nil {
		c.lines.Add(1)
	}
	return n, err
}

// Miner is one miner connection.
type Miner struct {
	c      net.Conn
	r      *beam.Reader
	w      *beam.Writer
	counts Counts
	lines  atomic.Uint64
	bytes  atomic.Uint64
	// Job is the id of the latest job received.
	Job string
}

// Dial connects a miner to addr, with TLS when cfg is not nil.
func Dial(addr string, cfg *tls.Config) (*Miner, error) {
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("beamsim: dial %s: %w", addr, err)
	}
	m := &Miner{c: c, r: beam.NewReader(c)}
	m.w = beam.NewWriter(&counting{w: c, lines: &m.lines, bytes: &m.bytes})
	return m, nil
}

// Conn is the miner's connection, to send raw bytes.
func (m *Miner) Conn() net.Conn { return m.c }

// Counts returns what the miner has received (In) and sent (Out).
func (m *Miner) Counts() Counts {
	c := m.counts
	c.LinesOut, c.BytesOut = m.lines.Load(), m.bytes.Load()
	return c
}

// Read reads and decodes the next line from the node.
func (m *Miner) Read() (beam.Message, error) {
	line, err := m.r.ReadLine()
	if err != nil {
		return nil, fmt.Errorf("beamsim: miner read: %w", err)
	}
	m.counts.LinesIn++
	m.counts.BytesIn += uint64(len(line))
	if !m.r.Unterminated() {
		m.counts.BytesIn++
	}
	msg, err := beam.Decode(line)
	if err != nil {
		return nil, fmt.Errorf("beamsim: miner decode: %w", err)
	}
	if j, ok := msg.(*beam.Job); ok {
		m.Job = j.ID
	}
	return msg, nil
}

// Send writes a message.
func (m *Miner) Send(msg beam.Message) error { return m.w.WriteMessage(msg) }

// Login logs in with key and reads the result, then the job that follows
// a successful one; it returns the result's code.
func (m *Miner) Login(key string) (beam.ResultCode, error) {
	if err := m.Send(&beam.Login{ID: "login", APIKey: key}); err != nil {
		return 0, err
	}
	msg, err := m.Read()
	if err != nil {
		return 0, err
	}
	res, ok := msg.(*beam.Result)
	if !ok {
		return 0, fmt.Errorf("beamsim: login answered with %s", msg.Method())
	}
	if res.Code != beam.CodeLoginOK {
		return res.Code, nil
	}
	if _, err := m.Read(); err != nil {
		return 0, err
	}
	if m.Job == "" {
		return 0, errors.New("beamsim: no job after login")
	}
	return res.Code, nil
}

// Mine submits n solutions, each to the latest job, reading each result
// and the job that follows an accepted one; it returns the codes.
func (m *Miner) Mine(n int) ([]beam.ResultCode, error) {
	var codes []beam.ResultCode
	for i := range n {
		nonce := NoncePrefix + fmt.Sprintf("%012x", i)
		if err := m.Send(&beam.Solution{ID: m.Job, Nonce: nonce, Output: strings.Repeat("ab", beam.OutputHexLen/2)}); err != nil {
			return codes, err
		}
		msg, err := m.Read()
		if err != nil {
			return codes, err
		}
		res, ok := msg.(*beam.Result)
		if !ok {
			return codes, fmt.Errorf("beamsim: solution answered with %s", msg.Method())
		}
		codes = append(codes, res.Code)
		if res.Code == beam.CodeAccepted {
			if _, err := m.Read(); err != nil {
				return codes, err
			}
		}
	}
	return codes, nil
}

// Close closes the connection.
func (m *Miner) Close() error { return m.c.Close() }
