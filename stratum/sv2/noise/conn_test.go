package noise

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestConnHandshakeOverTCP(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	if c.ServerKey() != id.static.PublicKey() || s.ServerKey() != id.static.PublicKey() {
		t.Fatalf("server keys: client sees %x, server has %x", c.ServerKey(), s.ServerKey())
	}
	if cert, ok := c.ServerCertificate(); !ok || cert != id.cert {
		t.Fatalf("client sees certificate %+v, %v", cert, ok)
	}
	if _, ok := s.ServerCertificate(); !ok {
		t.Fatal("server has no certificate after the handshake")
	}
	if _, ok := s.LocalAddr().(*net.TCPAddr); !ok || c.RemoteAddr().String() != s.LocalAddr().String() {
		t.Fatalf("addresses: %v %v", c.RemoteAddr(), s.LocalAddr())
	}
	// A second Handshake is a no-op returning the first result.
	if err := c.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}

	up := frame(0x0000, 0x00, []byte("SetupConnection"))
	down := frame(0x8000, 0x15, pattern(40, 3))
	go func() { _, _ = c.Write(up) }()
	got := make([]byte, len(up))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("server read %x, %v", got, err)
	}
	go func() { _, _ = s.Write(down) }()
	f, err := c.ReadFrame()
	if err != nil || !bytes.Equal(f, down) {
		t.Fatalf("client ReadFrame %x, %v", f, err)
	}
}

func TestConnLazyHandshake(t *testing.T) {
	id := newTestIdentity(t)
	rc, rs := tcpPair(t)
	c, _ := Client(rc, id.clientConfig())
	s, _ := Server(rs, id.serverConfig())
	want := frame(0, 0x10, []byte("open"))
	errc := make(chan error, 1)
	go func() { _, err := c.Write(want); errc <- err }()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := s.ReadFrame()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadFrame %x, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Payloads of 0, 65519, 65520 and 1 MiB bytes cross intact both ways, and
// the bytes on the wire are 22 + L + 16·⌈L/65519⌉.
func TestConnPayloadSizesAndWireBytes(t *testing.T) {
	id := newTestIdentity(t)
	var cc, sc *countingConn
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(),
		func(n net.Conn) net.Conn { cc = &countingConn{Conn: n}; return cc },
		func(n net.Conn) net.Conn { sc = &countingConn{Conn: n}; return sc })
	for _, size := range []int{0, 65519, 65520, 1 << 20} {
		want := map[int]int{0: 22, 65519: 22 + 65519 + 16, 65520: 22 + 65520 + 32, 1 << 20: 22 + (1 << 20) + 17*16}[size]
		if WireSize(size) != want {
			t.Fatalf("WireSize(%d) = %d, want %d", size, WireSize(size), want)
		}
		for _, dir := range []struct {
			name        string
			from, to    *Conn
			fromC, toC  *countingConn
			ext, msgTyp byte
		}{
			{"client to server", c, s, cc, sc, 0, 0x1b},
			{"server to client", s, c, sc, cc, 0, 0x1f},
		} {
			f := frame(uint16(dir.ext), dir.msgTyp, pattern(size, byte(size)))
			w0, r0 := dir.fromC.written.Load(), dir.toC.read.Load()
			errc := make(chan error, 1)
			go func() {
				n, err := dir.from.Write(f)
				if err == nil && n != len(f) {
					err = io.ErrShortWrite
				}
				errc <- err
			}()
			got, err := dir.to.ReadFrame()
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", dir.name, size, err)
			}
			if !bytes.Equal(got, f) {
				t.Fatalf("%s, %d bytes: frame differs", dir.name, size)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if w := dir.fromC.written.Load() - w0; w != int64(WireSize(size)) {
				t.Errorf("%s, %d bytes: %d bytes written, want %d", dir.name, size, w, WireSize(size))
			}
			if r := dir.toC.read.Load() - r0; r != int64(WireSize(size)) {
				t.Errorf("%s, %d bytes: %d bytes read, want %d", dir.name, size, r, WireSize(size))
			}
		}
	}
}

// Write accepts several frames at once and frames split anywhere.
func TestConnWriteSplitsAndBatches(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	frames := [][]byte{frame(0, 1, nil), frame(0, 2, pattern(300, 1)), frame(0x8000, 3, pattern(70000, 2)), frame(0, 4, []byte{9})}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f...)
	}
	go func() {
		// All at once, then byte by byte, then in chunks of 1000.
		_, _ = c.Write(stream)
		for i := range stream {
			_, _ = c.Write(stream[i : i+1])
		}
		for i := 0; i < len(stream); i += 1000 {
			_, _ = c.Write(stream[i:min(i+1000, len(stream))])
		}
	}()
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
	for round := range 3 {
		for i, want := range frames {
			got, err := s.ReadFrame()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d frame %d: %d bytes, %v", round, i, len(got), err)
			}
		}
	}
}

// A flipped byte in the handshake, seen on the wire of a real TCP
// connection, fails the client's handshake.
func TestConnHandshakeTamperTCP(t *testing.T) {
	id := newTestIdentity(t)
	for _, tc := range []struct {
		name            string
		writeAt, readAt int64
	}{
		{"act 1 ephemeral key", 10, -1},
		{"act 2 ephemeral key", -1, 5},
		{"act 2 encrypted static key", -1, 64 + 3},
		{"act 2 static key MAC", -1, 128 + 2},
		{"act 2 encrypted certificate", -1, 144 + 5},
		{"act 2 certificate MAC", -1, 218 + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, rs := tcpPair(t)
			c, _ := Client(&flipConn{Conn: rc, writeAt: tc.writeAt, readAt: tc.readAt}, id.clientConfig())
			s, _ := Server(rs, id.serverConfig())
			cerr, _ := handshakeBoth(t, c, s)
			if !errors.Is(cerr, ErrAuthentication) {
				t.Fatalf("client handshake: %v", cerr)
			}
			if _, err := c.Write(frame(0, 0, nil)); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Write after a failed handshake: %v", err)
			}
		})
	}
}

// A flipped byte in a transport frame is rejected, and the connection stays
// unusable afterwards.
func TestConnTransportTamperTCP(t *testing.T) {
	id := newTestIdentity(t)
	const payload = 100
	for _, tc := range []struct {
		name string
		off  int64 // offset within the frame's wire bytes
	}{
		{"header ciphertext", 3},
		{"header MAC", 6 + 5},
		{"payload chunk", 22 + 10},
		{"payload MAC", 22 + payload + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(),
				func(n net.Conn) net.Conn { return &flipConn{Conn: n, readAt: -1, writeAt: Act1Size + tc.off} }, nil)
			go func() { _, _ = c.Write(frame(0, 0x1a, pattern(payload, 0))) }()
			_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 1024)
			_, err := s.Read(buf)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Read: %v", err)
			}
			if _, err2 := s.Read(buf); !errors.Is(err2, ErrAuthentication) {
				t.Fatalf("second Read: %v", err2)
			}
			if _, err := s.Write(frame(0, 1, nil)); err == nil {
				t.Fatal("Write succeeded on a terminated session")
			}
		})
	}
}

func TestConnCertificateRejected(t *testing.T) {
	id := newTestIdentity(t)
	other := newTestIdentity(t)
	validFrom := time.Unix(int64(id.cert.ValidFrom), 0)
	notAfter := time.Unix(int64(id.cert.NotValidAfter), 0)
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"wrong authority", Config{AuthorityKey: other.authority.PublicKey()}, ErrWrongAuthority},
		{"expired", Config{AuthorityKey: id.authority.PublicKey(), Now: func() time.Time { return notAfter.Add(11 * time.Second) }}, ErrCertificateExpired},
		{"not yet valid", Config{AuthorityKey: id.authority.PublicKey(), Now: func() time.Time { return validFrom.Add(-11 * time.Second) }}, ErrCertificateNotYetValid},
		{"expired within a wider skew", Config{AuthorityKey: id.authority.PublicKey(), ClockSkew: time.Minute, Now: func() time.Time { return notAfter.Add(30 * time.Second) }}, nil},
		{"expired with no skew", Config{AuthorityKey: id.authority.PublicKey(), ClockSkew: -1, Now: func() time.Time { return notAfter.Add(time.Second) }}, ErrCertificateExpired},
		{"insecure skip", Config{InsecureSkipAuthority: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, rs := tcpPair(t)
			c, err := Client(rc, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := Server(rs, id.serverConfig())
			cerr, _ := handshakeBoth(t, c, s)
			if tc.want == nil {
				if cerr != nil {
					t.Fatalf("handshake: %v", cerr)
				}
				return
			}
			var ce *CertificateError
			if !errors.Is(cerr, tc.want) || !errors.As(cerr, &ce) {
				t.Fatalf("handshake: %v, want %v", cerr, tc.want)
			}
			if c.ServerKey() != (PublicKey{}) {
				t.Fatal("ServerKey set after a rejected certificate")
			}
		})
	}
}

func TestConnFrameTooLarge(t *testing.T) {
	id := newTestIdentity(t)
	scfg := id.serverConfig()
	scfg.MaxPayload = 1000
	c, s := connectedPair(t, id, id.clientConfig(), scfg, nil, nil)
	go func() { _, _ = c.Write(frame(0, 1, pattern(1001, 0))) }()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := s.ReadFrame()
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Length != 1001 || tl.Limit != 1000 {
		t.Fatalf("ReadFrame: %v", err)
	}
	if cap(s.fr.plain) > HeaderSize+1000 {
		t.Fatalf("allocated %d bytes for a rejected frame", cap(s.fr.plain))
	}
	if _, err := s.ReadFrame(); !errors.As(err, &tl) {
		t.Fatalf("error not sticky: %v", err)
	}

	// The writer checks its own limit before sending anything.
	ccfg := id.clientConfig()
	ccfg.MaxPayload = 10
	c2, _ := connectedPair(t, id, ccfg, id.serverConfig(), nil, nil)
	hdr := frame(0, 1, pattern(11, 0))[:HeaderSize]
	if n, err := c2.Write(hdr); !errors.As(err, &tl) || n != 0 || tl.Length != 11 {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if _, err := c2.Write(frame(0, 1, nil)); !errors.As(err, &tl) {
		t.Fatalf("Write error not sticky: %v", err)
	}
}

// slowConn writes each buffer in two halves with a pause between them.
type slowConn struct {
	net.Conn
	pause time.Duration
	on    bool
}

func (c *slowConn) Write(p []byte) (int, error) {
	if !c.on || len(p) < 2 {
		return c.Conn.Write(p)
	}
	n, err := c.Conn.Write(p[:len(p)/2])
	if err != nil {
		return n, err
	}
	time.Sleep(c.pause)
	m, err := c.Conn.Write(p[len(p)/2:])
	return n + m, err
}

// A read deadline that fires in the middle of a frame leaves the frame
// resumable.
func TestConnReadDeadlineResumes(t *testing.T) {
	id := newTestIdentity(t)
	var slow *slowConn
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(),
		func(n net.Conn) net.Conn { slow = &slowConn{Conn: n, pause: 300 * time.Millisecond}; return slow }, nil)

	// Nothing sent: the read times out.
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := s.ReadFrame()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrame with nothing sent: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("deadline not respected")
	}

	slow.on = true
	want := frame(0, 0x1a, pattern(5000, 1))
	go func() { _, _ = c.Write(want) }()
	_ = s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := s.ReadFrame(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrame mid-frame: %v", err)
	}
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := s.ReadFrame()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("resumed ReadFrame: %d bytes, %v", len(got), err)
	}
}

func TestConnHandshakeContextTimeout(t *testing.T) {
	id := newTestIdentity(t)
	rc, _ := tcpPair(t) // the server side never answers
	c, _ := Client(rc, id.clientConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Handshake(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handshake: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Handshake took %v", d)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read after a failed handshake: %v", err)
	}

	// A deadline on the Conn bounds the handshake as well.
	rc2, _ := tcpPair(t)
	c2, _ := Client(rc2, id.clientConfig())
	_ = c2.SetDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if err := c2.Handshake(context.Background()); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Handshake with a deadline: %v", err)
	}
}

func TestConnEndOfStream(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	want := frame(0, 1, []byte("bye"))
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := s.ReadFrame(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadFrame: %x, %v", got, err)
	}
	if _, err := s.ReadFrame(); err != io.EOF {
		t.Fatalf("at a frame boundary: %v, want io.EOF", err)
	}

	// A stream cut inside a frame is an unexpected EOF.
	c2, s2 := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	var enc []byte
	enc, _ = encryptFrame(enc, &c2.enc, want[:HeaderSize], want[HeaderSize:])
	_, _ = c2.NetConn().Write(enc[:EncryptedHeaderSize+1])
	c2.Close()
	_ = s2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s2.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v", err)
	}
}

func TestConnReadSmallBuffers(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	want := append(frame(0, 1, pattern(10, 0)), frame(0, 2, pattern(3, 1))...)
	go func() { _, _ = c.Write(want) }()
	var got []byte
	buf := make([]byte, 4)
	for len(got) < len(want) {
		n, err := s.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
}

func TestConnReadFrameAfterPartialRead(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	go func() { _, _ = c.Write(frame(0, 1, pattern(10, 0))) }()
	if _, err := s.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadFrame(); err == nil {
		t.Fatal("ReadFrame succeeded with a partly read frame pending")
	}
}

func TestConnConcurrentReadWrite(t *testing.T) {
	id := newTestIdentity(t)
	c, s := connectedPair(t, id, id.clientConfig(), id.serverConfig(), nil, nil)
	const n = 200
	var wg sync.WaitGroup
	for _, p := range []struct{ from, to *Conn }{{c, s}, {s, c}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range n {
				if _, err := p.from.Write(frame(0, byte(i), pattern(i*37, byte(i)))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				f, err := p.to.ReadFrame()
				if err != nil || !bytes.Equal(f, frame(0, byte(i), pattern(i*37, byte(i)))) {
					t.Errorf("frame %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestConfigValidation(t *testing.T) {
	id := newTestIdentity(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Client(a, Config{}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("client without authority: %v", err)
	}
	if _, err := Client(a, Config{InsecureSkipAuthority: true, MaxPayload: MaxPayloadLimit + 1}); err == nil {
		t.Error("MaxPayload above the U24 limit accepted")
	}
	if _, err := Server(b, Config{Certificate: &id.cert}); err == nil {
		t.Error("server without a static key accepted")
	}
	if _, err := Server(b, Config{StaticKey: id.static}); err == nil {
		t.Error("server without a certificate accepted")
	}
	if _, err := Server(b, id.serverConfig()); err != nil {
		t.Errorf("valid server config: %v", err)
	}
}
