package noise

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testIdentity is an authority, a server static key and a certificate.
type testIdentity struct {
	authority *PrivateKey
	static    *PrivateKey
	cert      Certificate
}

func newTestIdentity(t testing.TB) testIdentity {
	t.Helper()
	authority, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := IssueCertificate(authority, static.PublicKey(), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return testIdentity{authority: authority, static: static, cert: cert}
}

func (id testIdentity) clientConfig() Config {
	return Config{AuthorityKey: id.authority.PublicKey()}
}

func (id testIdentity) serverConfig() Config {
	cert := id.cert
	return Config{StaticKey: id.static, Certificate: &cert}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tcpPair returns both ends of a TCP connection on 127.0.0.1.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// handshakeBoth runs both handshakes concurrently with a 10 s bound.
func handshakeBoth(t testing.TB, client, server *Conn) (clientErr, serverErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serverErr = server.Handshake(ctx)
	}()
	clientErr = client.Handshake(ctx)
	if clientErr != nil {
		// Unblock a server waiting for a client that gave up.
		client.Close()
	}
	wg.Wait()
	return clientErr, serverErr
}

// connectedPair returns a client and server Conn over TCP after a successful
// handshake; the raw conns are wrapped by wrapClient/wrapServer if non-nil.
func connectedPair(t testing.TB, id testIdentity, ccfg, scfg Config, wrapClient, wrapServer func(net.Conn) net.Conn) (*Conn, *Conn) {
	t.Helper()
	rc, rs := tcpPair(t)
	if wrapClient != nil {
		rc = wrapClient(rc)
	}
	if wrapServer != nil {
		rs = wrapServer(rs)
	}
	c, err := Client(rc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Server(rs, scfg)
	if err != nil {
		t.Fatal(err)
	}
	cerr, serr := handshakeBoth(t, c, s)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	return c, s
}

// frame builds a plaintext Sv2 frame.
func frame(ext uint16, msgType uint8, payload []byte) []byte {
	l := len(payload)
	f := []byte{byte(ext), byte(ext >> 8), msgType, byte(l), byte(l >> 8), byte(l >> 16)}
	return append(f, payload...)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// countingConn counts the bytes that cross it.
type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// flipConn flips one bit of the byte at stream offset readAt (incoming) or
// writeAt (outgoing); -1 disables either.
type flipConn struct {
	net.Conn
	readAt, writeAt int64
	readOff, wOff   int64
}

func (c *flipConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.readAt >= c.readOff && c.readAt < c.readOff+int64(n) {
		p[c.readAt-c.readOff] ^= 0x01
	}
	c.readOff += int64(n)
	return n, err
}

func (c *flipConn) Write(p []byte) (int, error) {
	if c.writeAt >= c.wOff && c.writeAt < c.wOff+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[c.writeAt-c.wOff] ^= 0x01
		p = q
	}
	n, err := c.Conn.Write(p)
	c.wOff += int64(n)
	return n, err
}

// nowFor returns a time inside the validity window of cert.
func nowFor(cert Certificate) time.Time {
	return time.Unix(int64(cert.ValidFrom)/2+int64(cert.NotValidAfter)/2, 0)
}
