package sv2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimit is the payload limit of the fuzzed Reader.
const fuzzLimit = 1 << 16

// frameSeeds returns every sample message as one frame, and one short
// stream of three frames. Seeds stay small: the fuzzer minimizes every
// new input, and minimizing a long stream takes minutes.
func frameSeeds() [][]byte {
	var out [][]byte
	var stream []byte
	for i, m := range sampleMessages() {
		f, _ := AppendMessage(nil, m)
		out = append(out, f)
		if i < 3 {
			stream = append(stream, f...)
		}
	}
	return append(out, stream)
}

// messageSeeds returns, for FuzzMessage, one input per sample: the
// sample's index in Messages() followed by its payload.
func messageSeeds() [][]byte {
	index := map[Kind]int{}
	for i, info := range Messages() {
		index[info.Kind] = i
	}
	var out [][]byte
	for _, m := range sampleMessages() {
		p, _ := m.Encode([]byte{byte(index[m.Kind()])})
		out = append(out, p)
	}
	return out
}

// FuzzFrame feeds arbitrary bytes to the frame Reader, then classifies
// and parses every frame read. Properties: no panic; errors are the
// documented ones; no payload or buffer beyond the limit; a parsed
// message re-encodes to a frame that parses to the same bytes again.
func FuzzFrame(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s)
	}
	for _, fx := range loadFixtures(f) {
		f.Add(fx.frame)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), fuzzLimit)
		for {
			h, payload, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var tooLarge *FrameTooLargeError
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &tooLarge) {
					t.Fatalf("unexpected error type: %v", err)
				}
				break
			}
			if len(payload) != int(h.MsgLength) || len(payload) > fuzzLimit {
				t.Fatalf("payload of %d bytes for msg_length %d", len(payload), h.MsgLength)
			}
			if c := Classify(h, payload); c.Name == "" {
				t.Fatal("Classify returned no name")
			}
			m, err := ParseMessage(h, payload)
			if err != nil {
				continue
			}
			frame, err := AppendMessage(nil, m)
			if err != nil {
				t.Fatalf("re-encoding %v: %v", h.Kind(), err)
			}
			h2, p2, _, err := SplitFrame(frame, MaxU24)
			if err != nil || h2.Kind() != h.Kind() {
				t.Fatalf("re-encoded frame does not split: %v", err)
			}
			m2, err := ParseMessage(h2, p2)
			if err != nil {
				t.Fatalf("re-encoded %v does not parse: %v", h.Kind(), err)
			}
			again, _ := AppendMessage(nil, m2)
			if !bytes.Equal(again, frame) {
				t.Fatalf("decode-encode not stable for %v:\n%x\n%x", h.Kind(), frame, again)
			}
		}
		if cap(r.buf) > fuzzLimit {
			t.Fatalf("reader buffer grew to %d, limit %d", cap(r.buf), fuzzLimit)
		}
	})
}

// FuzzMessage decodes data[1:] as the message type Messages()[data[0]].
// Properties: no panic; allocation bounded by a small multiple of the
// payload; a decoded message re-encodes to a payload of the same length
// (identical unless a BOOL had padding bits set) that decodes and
// re-encodes to itself; Classify's keys agree with the decoded fields.
func FuzzMessage(f *testing.F) {
	for _, s := range messageSeeds() {
		f.Add(s)
	}
	infos := Messages()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		info := infos[int(data[0])%len(infos)]
		payload := data[1:]
		m := info.New()
		before := allocatedBytes()
		err := m.Decode(payload)
		// Worst case is SEQ0_64K[B0_16M] of empty elements: a 24-byte
		// slice header per 3 payload bytes, plus the copied data.
		if n := allocatedBytes() - before; n > uint64(16*len(payload)+64<<10) {
			t.Fatalf("%s: decoding %d bytes allocated %d", info.Name, len(payload), n)
		}
		c := Classify(Header{ExtensionType: info.Kind.Ext, MsgType: info.Kind.Type}, payload)
		if c.Name != info.Name {
			t.Fatalf("Classify name %q, want %q", c.Name, info.Name)
		}
		if err != nil {
			return
		}
		checkKeys(t, m, c)
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("%s: decoded message does not encode: %v", info.Name, err)
		}
		if len(enc) != len(payload) {
			t.Fatalf("%s: re-encoded %d bytes from %d", info.Name, len(enc), len(payload))
		}
		hasBool := info.Kind.Ext == ExtCore && (info.Kind.Type == MsgNewExtendedMiningJob || info.Kind.Type == MsgNewTemplate)
		if !hasBool && !bytes.Equal(enc, payload) {
			t.Fatalf("%s: re-encoding changed the bytes:\n%x\n%x", info.Name, payload, enc)
		}
		m2 := info.New()
		if err := m2.Decode(enc); err != nil {
			t.Fatalf("%s: re-encoded payload does not decode: %v", info.Name, err)
		}
		enc2, _ := m2.Encode(nil)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: decode-encode not stable", info.Name)
		}
	})
}

// TestWriteFuzzCorpus rewrites the committed seed corpora under
// testdata/fuzz when SV2_WRITE_CORPUS=1; otherwise it checks they exist.
func TestWriteFuzzCorpus(t *testing.T) {
	corpora := map[string][][]byte{"FuzzFrame": frameSeeds(), "FuzzMessage": messageSeeds()}
	for _, fx := range loadFixtures(t) {
		corpora["FuzzFrame"] = append(corpora["FuzzFrame"], fx.frame)
	}
	for name, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("SV2_WRITE_CORPUS") != "1" {
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) < len(seeds) {
				t.Errorf("%s: %d committed seeds, want at least %d (run with SV2_WRITE_CORPUS=1): %v", dir, len(entries), len(seeds), err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
