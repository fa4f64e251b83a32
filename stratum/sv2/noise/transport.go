package noise

import (
	"errors"
	"fmt"
	"io"
	"net"
)

const (
	// HeaderSize is the size of a plaintext Sv2 frame header: extension_type
	// U16, msg_type U8, msg_length U24, all little-endian.
	HeaderSize = 6

	// EncryptedHeaderSize is the size of an encrypted frame header on the
	// wire: the 6-byte header and its MAC.
	EncryptedHeaderSize = HeaderSize + MACSize

	// MaxChunkSize is the largest plaintext payload chunk encrypted under one
	// MAC; with its MAC it fills a 65535-byte Noise message.
	MaxChunkSize = 65535 - MACSize

	// MaxPayloadLimit is the largest payload msg_length (U24) can announce.
	MaxPayloadLimit = 1<<24 - 1

	// DefaultMaxPayload is the payload limit used when Config.MaxPayload is
	// zero: the protocol maximum. The payload buffer grows only as
	// authenticated chunks arrive, so a peer that announces a large frame
	// costs memory only for the bytes it actually sends.
	DefaultMaxPayload = MaxPayloadLimit
)

// WireSize returns the number of bytes an encrypted frame with a payload of
// payloadLen plaintext bytes takes on the wire:
// 22 + L + 16·⌈L/65519⌉.
func WireSize(payloadLen int) int {
	chunks := (payloadLen + MaxChunkSize - 1) / MaxChunkSize
	return EncryptedHeaderSize + payloadLen + chunks*MACSize
}

// payloadLength returns msg_length from a plaintext frame header.
func payloadLength(h []byte) int {
	return int(h[3]) | int(h[4])<<8 | int(h[5])<<16
}

// encryptFrame appends the encryption of one frame, header and payload, to
// dst: the header alone, then the payload in chunks of at most MaxChunkSize.
// The header's msg_length must equal len(payload).
func encryptFrame(dst []byte, cs *cipherState, header, payload []byte) ([]byte, error) {
	var err error
	if dst, err = cs.encryptWithAd(dst, nil, header); err != nil {
		return dst, fmt.Errorf("noise: encrypt frame header: %w", err)
	}
	for len(payload) > 0 {
		n := min(len(payload), MaxChunkSize)
		if dst, err = cs.encryptWithAd(dst, nil, payload[:n]); err != nil {
			return dst, fmt.Errorf("noise: encrypt frame payload: %w", err)
		}
		payload = payload[n:]
	}
	return dst, nil
}

// frameReader decrypts frames from an encrypted stream. It is resumable: a
// read error that leaves the stream intact (a timeout) can be followed by
// another call to next, which continues where the last one stopped.
type frameReader struct {
	r   io.Reader
	cs  cipherState
	max int

	wire    []byte // ciphertext of the current header or chunk
	need    int    // bytes of wire wanted for the current step
	have    int    // bytes of wire read so far
	inFrame bool   // the header of the current frame has been decrypted
	remain  int    // payload bytes of the current frame not yet decrypted
	plain   []byte // decrypted header and payload of the current frame
	hdr     [HeaderSize]byte
}

func newFrameReader(r io.Reader, cs cipherState, maxPayload int) *frameReader {
	return &frameReader{
		r:    r,
		cs:   cs,
		max:  maxPayload,
		wire: make([]byte, EncryptedHeaderSize, 4096),
		need: EncryptedHeaderSize,
	}
}

// fill reads until have == need.
func (fr *frameReader) fill() error {
	for fr.have < fr.need {
		n, err := fr.r.Read(fr.wire[fr.have:fr.need])
		fr.have += n
		if fr.have == fr.need {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (fr.have > 0 || fr.inFrame) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// next returns the next decrypted frame (header and payload). The slice is
// valid until the following call. Errors other than a timeout or a clean
// io.EOF between frames leave the reader unusable.
func (fr *frameReader) next() ([]byte, error) {
	if !fr.inFrame {
		if err := fr.fill(); err != nil {
			return nil, err
		}
		hdr := fr.hdr[:0]
		if _, err := fr.cs.decryptWithAd(hdr, nil, fr.wire[:EncryptedHeaderSize]); err != nil {
			return nil, fmt.Errorf("noise: decrypt frame header: %w", err)
		}
		hdr = fr.hdr[:]
		l := payloadLength(hdr)
		if l > fr.max {
			return nil, &FrameTooLargeError{Length: l, Limit: fr.max}
		}
		fr.inFrame = true
		fr.remain = l
		if cap(fr.plain) < HeaderSize {
			fr.plain = make([]byte, 0, HeaderSize+min(l, MaxChunkSize))
		}
		fr.plain = append(fr.plain[:0], hdr...)
		fr.startChunk()
	}
	for fr.remain > 0 {
		if err := fr.fill(); err != nil {
			return nil, err
		}
		n := fr.need - MACSize
		fr.grow(n)
		var err error
		if fr.plain, err = fr.cs.decryptWithAd(fr.plain, nil, fr.wire[:fr.need]); err != nil {
			return nil, fmt.Errorf("noise: decrypt frame payload: %w", err)
		}
		fr.remain -= n
		fr.startChunk()
	}
	fr.inFrame = false
	return fr.plain, nil
}

// startChunk sets up the read of the next header or payload chunk.
func (fr *frameReader) startChunk() {
	fr.have = 0
	if fr.remain == 0 {
		fr.need = EncryptedHeaderSize
	} else {
		fr.need = min(fr.remain, MaxChunkSize) + MACSize
	}
	if cap(fr.wire) < fr.need {
		fr.wire = make([]byte, fr.need)
	}
	fr.wire = fr.wire[:cap(fr.wire)]
}

// grow makes room in plain for n more bytes without ever exceeding the
// frame's total size, so memory follows the bytes actually received and
// never passes HeaderSize+max.
func (fr *frameReader) grow(n int) {
	if cap(fr.plain)-len(fr.plain) >= n {
		return
	}
	total := len(fr.plain) + fr.remain
	c := min(max(2*cap(fr.plain), len(fr.plain)+n), total)
	p := make([]byte, len(fr.plain), c)
	copy(p, fr.plain)
	fr.plain = p
}

// isTimeout reports whether err is a deadline or timeout error after which
// the stream is still intact.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
