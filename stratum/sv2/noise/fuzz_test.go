package noise

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// fuzzKey is the fixed transport key of FuzzTransportReader.
var fuzzKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// lyingPeerStream encrypts plain as a peer that may lie would: each 6-byte
// header is encrypted alone, then the payload it announces is encrypted in
// chunks of chunk bytes, cut short when plain runs out.
func lyingPeerStream(plain []byte, chunk int) []byte {
	var cs cipherState
	cs.initializeKey(fuzzKey)
	var wire []byte
	for len(plain) > 0 {
		h := plain[:min(HeaderSize, len(plain))]
		wire, _ = cs.encryptWithAd(wire, nil, h)
		plain = plain[len(h):]
		if len(h) < HeaderSize {
			break
		}
		l := min(payloadLength(h), len(plain))
		body := plain[:l]
		plain = plain[l:]
		for len(body) > 0 {
			n := min(len(body), chunk)
			wire, _ = cs.encryptWithAd(wire, nil, body[:n])
			body = body[n:]
		}
	}
	return wire
}

// stutterReader returns at most step bytes per Read and, when stutter is
// set, a timeout before every chunk of data.
type stutterReader struct {
	r       io.Reader
	step    int
	stutter bool
	timeout bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (s *stutterReader) Read(p []byte) (int, error) {
	if s.stutter {
		s.timeout = !s.timeout
		if s.timeout {
			return 0, timeoutErr{}
		}
	}
	return s.r.Read(p[:min(len(p), s.step)])
}

// FuzzTransportReader feeds the frame reader the encryption of arbitrary
// plaintext (honest or lying headers, honest or odd chunking), optionally
// with one flipped byte, through a reader that returns few bytes at a time
// and injects timeouts. The reader must never panic, never return a frame
// that disagrees with its header or exceeds the limit, and never allocate
// beyond the header plus the limit.
func FuzzTransportReader(f *testing.F) {
	f.Add([]byte{0, 0, 0x00, 0, 0, 0}, uint32(0), uint16(0), uint8(0))
	f.Add(frame(0, 0x1a, []byte("hello")), uint32(0), uint16(100), uint8(3))
	f.Add(frame(0, 0x1a, []byte("hello")), uint32(7), uint16(100), uint8(0))
	f.Add([]byte{0, 0, 1, 0xff, 0xff, 0xff}, uint32(0), uint16(50), uint8(1))
	f.Add(append(frame(0, 1, pattern(300, 1)), frame(0x8000, 2, nil)...), uint32(0), uint16(1000), uint8(0x85))
	f.Fuzz(func(t *testing.T, plain []byte, flip uint32, limit uint16, mode uint8) {
		max := int(limit)
		if max == 0 {
			max = 1 << 16
		}
		chunk := MaxChunkSize
		if mode&0x80 != 0 {
			chunk = 1 + int(mode&0x0f) // a peer that chunks wrongly
		}
		wire := lyingPeerStream(plain, chunk)
		if flip != 0 && len(wire) > 0 {
			wire[int(flip-1)%len(wire)] ^= byte(flip>>24) | 1
		}
		var cs cipherState
		cs.initializeKey(fuzzKey)
		src := &stutterReader{r: bytes.NewReader(wire), step: 1 + int(mode&0x3f), stutter: mode&0x40 != 0}
		fr := newFrameReader(src, cs, max)
		frames, total := 0, len(plain)
		for range 10000 {
			got, err := fr.next()
			if cap(fr.plain) > HeaderSize+max {
				t.Fatalf("allocated %d bytes with a limit of %d", cap(fr.plain), max)
			}
			if isTimeout(err) {
				continue
			}
			if err != nil {
				var tl *FrameTooLargeError
				if errors.As(err, &tl) && (tl.Length <= max || tl.Limit != max) {
					t.Fatalf("bad FrameTooLargeError %+v", tl)
				}
				return
			}
			frames++
			if len(got) < HeaderSize || len(got) != HeaderSize+payloadLength(got) || payloadLength(got) > max {
				t.Fatalf("frame of %d bytes announcing %d", len(got), payloadLength(got))
			}
			if frames > total/HeaderSize {
				t.Fatalf("%d frames from %d plaintext bytes", frames, total)
			}
			if flip == 0 && chunk == MaxChunkSize && !bytes.HasPrefix(plain, got) {
				t.Fatal("decrypted frame differs from the plaintext")
			}
			if flip == 0 && chunk == MaxChunkSize {
				plain = plain[len(got):]
			}
		}
		t.Fatal("reader did not terminate")
	})
}

// fuzzHandshakeKeys are built once per process; the valid act 2 seed is only
// valid within the process that made it.
type fuzzHandshakeKeys struct {
	id   testIdentity
	e, s ellKey
}

func newFuzzHandshakeKeys(f *testing.F) fuzzHandshakeKeys {
	id := newTestIdentity(f)
	e, err := generateEllKey()
	if err != nil {
		f.Fatal(err)
	}
	s, err := newEllKey(id.static.key)
	if err != nil {
		f.Fatal(err)
	}
	return fuzzHandshakeKeys{id: id, e: e, s: s}
}

// FuzzHandshakeAct1 gives the responder arbitrary act 1 bytes: every 64-byte
// input must yield a 234-byte act 2, and other lengths an error.
func FuzzHandshakeAct1(f *testing.F) {
	k := newFuzzHandshakeKeys(f)
	f.Add(make([]byte, 64))
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Add(k.e.enc[:])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, msg []byte) {
		resp := newResponderHandshakeWithKeys(k.e, k.s, k.id.cert)
		err := resp.readAct1(msg)
		if len(msg) != Act1Size {
			if err == nil {
				t.Fatalf("accepted %d bytes", len(msg))
			}
			return
		}
		if err != nil {
			t.Fatalf("readAct1: %v", err)
		}
		act2, _, err := resp.writeAct2()
		if err != nil || len(act2) != Act2Size {
			t.Fatalf("writeAct2: %v", err)
		}
	})
}

// FuzzHandshakeAct2 gives the initiator arbitrary act 2 bytes. Only the
// genuine act 2 may be accepted, and then its certificate must verify.
func FuzzHandshakeAct2(f *testing.F) {
	k := newFuzzHandshakeKeys(f)
	ini := newInitiatorHandshakeWithKey(k.e)
	act1 := ini.writeAct1()
	resp := newResponderHandshakeWithKeys(k.e, k.s, k.id.cert)
	if err := resp.readAct1(act1[:]); err != nil {
		f.Fatal(err)
	}
	genuine, _, err := resp.writeAct2()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine[:])
	f.Add(make([]byte, Act2Size))
	f.Add(make([]byte, 170))
	f.Fuzz(func(t *testing.T, msg []byte) {
		state := *ini
		res, err := state.readAct2(msg)
		if err != nil {
			if len(msg) == Act2Size && !errors.Is(err, ErrAuthentication) {
				t.Fatalf("234 bytes rejected without an authentication error: %v", err)
			}
			return
		}
		if !bytes.Equal(msg, genuine[:]) {
			t.Fatal("accepted a forged act 2")
		}
		if err := res.certificate.Verify(k.id.authority.PublicKey(), res.serverKey, nowFor(res.certificate), time.Second); err != nil {
			t.Fatalf("genuine certificate: %v", err)
		}
	})
}

// FuzzParsePublicKey checks that the text form never panics and that
// every accepted string is the canonical form of its key.
func FuzzParsePublicKey(f *testing.F) {
	f.Add("9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh")
	f.Add("1111")
	f.Add("0OIl")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("%q parsed to a key printed as %q", s, k.String())
		}
		if _, err := NewPublicKey(k[:]); err != nil {
			t.Fatalf("accepted an invalid key: %v", err)
		}
	})
}
