package noise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeFlushSize is how much ciphertext Write gathers before writing it to
// the underlying connection.
const writeFlushSize = 64 << 10

// Conn is a Noise-encrypted Sv2 connection. Its plaintext stream, in both
// directions, is a sequence of whole Sv2 frames: a 6-byte header
// (extension_type U16, msg_type U8, msg_length U24 little-endian) followed by
// msg_length payload bytes.
//
// The handshake runs on the first Read or Write, or explicitly with
// Handshake. Read and Write may be called concurrently with each other, as
// on any net.Conn, and deadlines set on the Conn apply to the handshake
// too. A failed authentication (a corrupted byte anywhere) closes the
// underlying connection and every later call returns the same error.
type Conn struct {
	conn     net.Conn
	cfg      Config
	isClient bool

	hsMu   sync.Mutex
	hsDone atomic.Bool
	hsErr  error
	peer   PublicKey
	cert   Certificate

	rmu   sync.Mutex
	fr    *frameReader
	rbuf  []byte // decrypted bytes of the current frame not yet returned
	rerr  error  // sticky read error
	wmu   sync.Mutex
	enc   cipherState
	wbuf  []byte // ciphertext gathered by Write
	wpend []byte // incomplete trailing frame from earlier Writes
	werr  error  // sticky write error
}

// Client returns the initiator side of a Noise session over conn. It checks
// cfg but does not touch conn.
func Client(conn net.Conn, cfg Config) (*Conn, error) {
	if err := cfg.validateClient(); err != nil {
		return nil, err
	}
	return &Conn{conn: conn, cfg: cfg, isClient: true}, nil
}

// Server returns the responder side of a Noise session over conn. It checks
// cfg but does not touch conn.
func Server(conn net.Conn, cfg Config) (*Conn, error) {
	if err := cfg.validateServer(); err != nil {
		return nil, err
	}
	return &Conn{conn: conn, cfg: cfg}, nil
}

// Handshake runs the handshake if it has not run yet and returns its
// result. If ctx ends first, the underlying connection is closed and the
// context's error returned. Later calls return the first result.
func (c *Conn) Handshake(ctx context.Context) (err error) {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone.Load() {
		return c.hsErr
	}
	defer func() {
		if err != nil {
			c.hsErr = err
		}
		c.hsDone.Store(true)
	}()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("noise: handshake: %w", err)
	}
	if ctx.Done() != nil {
		done := make(chan struct{})
		interrupted := make(chan error, 1)
		go func() {
			select {
			case <-ctx.Done():
				_ = c.conn.Close()
				interrupted <- ctx.Err()
			case <-done:
				interrupted <- nil
			}
		}()
		defer func() {
			close(done)
			if ctxErr := <-interrupted; ctxErr != nil {
				err = fmt.Errorf("noise: handshake: %w", ctxErr)
			}
		}()
	}
	var keys sessionKeys
	if c.isClient {
		keys, err = c.clientHandshake()
	} else {
		keys, err = c.serverHandshake()
	}
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	c.enc = keys.send
	c.fr = newFrameReader(bufio.NewReaderSize(c.conn, 32<<10), keys.recv, c.cfg.maxPayload())
	return nil
}

func (c *Conn) clientHandshake() (sessionKeys, error) {
	hs, err := newInitiatorHandshake()
	if err != nil {
		return sessionKeys{}, err
	}
	act1 := hs.writeAct1()
	if _, err := c.conn.Write(act1[:]); err != nil {
		return sessionKeys{}, fmt.Errorf("noise: handshake: send act 1: %w", err)
	}
	var act2 [Act2Size]byte
	if _, err := io.ReadFull(c.conn, act2[:]); err != nil {
		return sessionKeys{}, fmt.Errorf("noise: handshake: read act 2: %w", err)
	}
	res, err := hs.readAct2(act2[:])
	if err != nil {
		return sessionKeys{}, err
	}
	if !c.cfg.InsecureSkipAuthority {
		err := res.certificate.Verify(c.cfg.AuthorityKey, res.serverKey, c.cfg.now(), c.cfg.clockSkew())
		if err != nil {
			return sessionKeys{}, fmt.Errorf("noise: handshake: %w", err)
		}
	}
	c.peer, c.cert = res.serverKey, res.certificate
	return res.keys, nil
}

func (c *Conn) serverHandshake() (sessionKeys, error) {
	hs, err := newResponderHandshake(c.cfg.StaticKey, *c.cfg.Certificate)
	if err != nil {
		return sessionKeys{}, err
	}
	var act1 [Act1Size]byte
	if _, err := io.ReadFull(c.conn, act1[:]); err != nil {
		return sessionKeys{}, fmt.Errorf("noise: handshake: read act 1: %w", err)
	}
	if err := hs.readAct1(act1[:]); err != nil {
		return sessionKeys{}, err
	}
	act2, keys, err := hs.writeAct2()
	if err != nil {
		return sessionKeys{}, err
	}
	if _, err := c.conn.Write(act2[:]); err != nil {
		return sessionKeys{}, fmt.Errorf("noise: handshake: send act 2: %w", err)
	}
	c.peer, c.cert = c.cfg.StaticKey.PublicKey(), *c.cfg.Certificate
	return keys, nil
}

// ServerKey returns the server's static key: on a client, the one the
// server proved during the handshake; on a server, its own. It is the zero
// key before the handshake completes.
func (c *Conn) ServerKey() PublicKey {
	if !c.hsDone.Load() || c.hsErr != nil {
		return PublicKey{}
	}
	return c.peer
}

// ServerCertificate returns the certificate the server presented (on a
// server, the one it sends), or false before the handshake completes.
func (c *Conn) ServerCertificate() (Certificate, bool) {
	if !c.hsDone.Load() || c.hsErr != nil {
		return Certificate{}, false
	}
	return c.cert, true
}

// Read reads decrypted frame bytes. Frames arrive whole and in order, so an
// Sv2 frame reader can read from a Conn as from a plaintext connection.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rbuf) == 0 {
		frame, err := c.nextFrame()
		if err != nil {
			return 0, err
		}
		c.rbuf = frame
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// ReadFrame returns the next whole decrypted frame, header included,
// without copying. The slice is valid until the next Read or ReadFrame. It
// fails if Read has returned only part of the current frame.
func (c *Conn) ReadFrame() ([]byte, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return nil, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rbuf) != 0 {
		return nil, fmt.Errorf("noise: read frame: %d bytes of the previous frame not yet read", len(c.rbuf))
	}
	return c.nextFrame()
}

// nextFrame reads a frame, keeping errors sticky unless they are timeouts
// or a clean end of stream. Called with rmu held.
func (c *Conn) nextFrame() ([]byte, error) {
	if c.rerr != nil {
		return nil, c.rerr
	}
	frame, err := c.fr.next()
	if err == nil {
		return frame, nil
	}
	if isTimeout(err) || err == io.EOF {
		return nil, err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("noise: read frame: %w", err)
	}
	c.rerr = err
	var tooLarge *FrameTooLargeError
	if errors.Is(err, ErrAuthentication) || errors.As(err, &tooLarge) {
		// The session must be terminated: the stream cannot be resynchronised.
		_ = c.conn.Close()
	}
	return nil, err
}

// Write encrypts and sends Sv2 frames. p is taken as part of the plaintext
// stream of whole frames: every frame completed by p is encrypted (header
// and payload separately) and sent before Write returns; an incomplete
// frame at the end of p is kept and sent when later Writes complete it, so
// a buffered writer may split frames anywhere. A header announcing more
// than the configured maximum payload fails with *FrameTooLargeError.
// Write errors are sticky.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n, err := c.write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// write does the work of Write and returns how many bytes of p belong to
// frames that were sent or are still pending. Called with wmu held.
func (c *Conn) write(p []byte) (int, error) {
	total := len(p)
	flushed := 0 // bytes of p covered by successful flushes
	c.wbuf = c.wbuf[:0]
	for len(p) > 0 {
		if len(c.wpend) == 0 && len(p) >= HeaderSize {
			l := payloadLength(p)
			if l > c.cfg.maxPayload() {
				return flushed, &FrameTooLargeError{Length: l, Limit: c.cfg.maxPayload()}
			}
			if len(p) >= HeaderSize+l {
				// Fast path: a whole frame in p.
				var err error
				if c.wbuf, err = encryptFrame(c.wbuf, &c.enc, p[:HeaderSize], p[HeaderSize:HeaderSize+l]); err != nil {
					return flushed, err
				}
				p = p[HeaderSize+l:]
				if len(c.wbuf) >= writeFlushSize {
					if err := c.flush(); err != nil {
						return flushed, err
					}
					flushed = total - len(p)
				}
				continue
			}
		}
		// Slow path: gather an incomplete frame in wpend.
		want := HeaderSize
		if len(c.wpend) >= HeaderSize {
			want = HeaderSize + payloadLength(c.wpend)
		}
		k := min(want-len(c.wpend), len(p))
		c.wpend = append(c.wpend, p[:k]...)
		p = p[k:]
		if len(c.wpend) == HeaderSize && want == HeaderSize {
			l := payloadLength(c.wpend)
			if l > c.cfg.maxPayload() {
				return flushed, &FrameTooLargeError{Length: l, Limit: c.cfg.maxPayload()}
			}
			want = HeaderSize + l
		}
		if len(c.wpend) == want {
			var err error
			if c.wbuf, err = encryptFrame(c.wbuf, &c.enc, c.wpend[:HeaderSize], c.wpend[HeaderSize:]); err != nil {
				return flushed, err
			}
			c.wpend = c.wpend[:0]
		}
	}
	if err := c.flush(); err != nil {
		return flushed, err
	}
	return total, nil
}

func (c *Conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		return fmt.Errorf("noise: write: %w", err)
	}
	return nil
}

// Close closes the underlying connection. A frame left incomplete by Write
// is discarded.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr returns the local address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote address of the underlying connection.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying
// connection; they also bound the handshake.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection. A
// Read that times out may be retried: the frame being read is resumed.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection. A
// Write that times out leaves the session unusable, because part of a frame
// may have been sent.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

var _ net.Conn = (*Conn)(nil)
