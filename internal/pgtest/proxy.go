package pgtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of a Postgres server that can lose the
// answer to a COMMIT: it passes the COMMIT on, waits until the server has
// answered (the transaction is committed), then cuts the connection
// without passing the answer back. The client sees its commit fail while
// it succeeded: an ambiguous commit.
type Proxy struct {
	// URL is the database URL through the proxy.
	URL string
	// Lost counts the commits whose answer was lost.
	Lost atomic.Int64

	ln     net.Listener
	target string // host:port or a socket path
	drop   atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy starts a proxy to the database of dbURL for t.
func NewProxy(t testing.TB, dbURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	q := u.Query()
	p := &Proxy{target: u.Host}
	if host := q.Get("host"); host != "" && host[0] == '/' {
		port := q.Get("port")
		if port == "" {
			port = "5432"
		}
		p.target = filepath.Join(host, ".s.PGSQL."+port)
	}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	addr := p.ln.Addr().(*net.TCPAddr)
	q.Del("host")
	q.Set("port", strconv.Itoa(addr.Port))
	q.Set("sslmode", "disable")
	u.Host, u.RawQuery = "127.0.0.1:"+strconv.Itoa(addr.Port), q.Encode()
	p.URL = u.String()
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// LoseCommits makes the proxy lose the answers of the next n commits.
func (p *Proxy) LoseCommits(n int64) { p.drop.Add(n) }

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		network := "tcp"
		if p.target[0] == '/' {
			network = "unix"
		}
		s, err := net.Dial(network, p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
	}
}

// pipe relays one connection, reading the client's messages one by one
// (the startup message has no type byte) so that it can tell a COMMIT.
func (p *Proxy) pipe(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	done := make(chan struct{}) // closed when the server side ends or an answer is lost
	var lose atomic.Bool
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && lose.Load() {
				// The server answered the commit: it is durable. Lose it.
				p.Lost.Add(1)
				return
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	var head [5]byte
	if _, err := io.ReadFull(client, head[:4]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(head[:4])
	startup := make([]byte, n)
	copy(startup, head[:4])
	if _, err := io.ReadFull(client, startup[4:]); err != nil {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(client, head[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(head[1:])
		msg := make([]byte, 1+n)
		copy(msg, head[:])
		if _, err := io.ReadFull(client, msg[5:]); err != nil {
			return
		}
		commit := head[0] == 'Q' && bytes.EqualFold(bytes.TrimRight(msg[5:], "\x00; "), []byte("commit"))
		if commit && p.drop.Load() > 0 && p.drop.Add(-1) >= 0 {
			lose.Store(true)
			if _, err := server.Write(msg); err != nil {
				return
			}
			<-done
			return
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}
