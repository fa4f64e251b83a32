package policy_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

func remainder(t testing.TB, p policy.Policy, state []byte) string {
	t.Helper()
	f, ok := p.(policy.Finisher)
	if !ok {
		t.Fatalf("%s is not a Finisher", p.Name())
	}
	return f.Remainder(state)
}

func TestDelimiter(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		msgs         []*event.Message
		want         []uint64
		rem          string
	}{
		{"lines", `{}`, []*event.Message{payload(up, "a\nb\nc")}, []uint64{2}, "1 bytes after the last delimiter"},
		{"empty messages", `{}`, []*event.Message{payload(up, ""), payload(up, "x"), payload(up, ""), payload(up, "\n"), payload(up, "")}, []uint64{0, 0, 0, 1, 0}, ""},
		{"record across messages", `{}`, []*event.Message{payload(up, "ab"), payload(up, "cd"), payload(up, "e\nf")}, []uint64{0, 0, 1}, "1 bytes after the last delimiter"},
		{"delimiter at a message boundary", `{"delimiter": "\r\n"}`, []*event.Message{payload(up, "ab\r\n"), payload(up, "\r\ncd\r\n")}, []uint64{1, 2}, ""},
		{"crlf split", `{"delimiter_hex": "0d0a"}`, []*event.Message{payload(up, "ab\r"), payload(up, "\ncd")}, []uint64{0, 1}, "2 bytes after the last delimiter"},
		{"long delimiter split over three", `{"delimiter": "<END>"}`, []*event.Message{payload(up, "x<E"), payload(up, "N"), payload(up, "D>y<END><END>")}, []uint64{0, 0, 3}, "0 bytes after the last delimiter"},
		{"false start then real", `{"delimiter": "aab"}`, []*event.Message{payload(up, "xa"), payload(up, "aab")}, []uint64{0, 1}, ""},
		{"non-overlapping", `{"delimiter": "aa"}`, []*event.Message{payload(up, "a"), payload(up, "aa")}, []uint64{0, 1}, "1 bytes after the last delimiter"},
		{"directions are separate streams", `{"delimiter": "\r\n"}`, []*event.Message{payload(up, "a\r"), payload(down, "\nb"), payload(up, "\n")}, []uint64{0, 0, 1}, "2 bytes after the last delimiter"},
		{"both directions carry", `{}`, []*event.Message{payload(up, "abc"), payload(down, "de")}, []uint64{0, 0}, "5 bytes after the last delimiter (3 request, 2 response)"},
		{"response only", `{"direction": "response"}`, []*event.Message{payload(up, "\n\n"), payload(down, "\n\n\n")}, []uint64{0, 3}, ""},
		{"request only", `{"direction": "request"}`, []*event.Message{payload(up, "\n\n"), payload(down, "\n\n\n")}, []uint64{2, 0}, ""},
		{"binary frame, NUL delimiter", `{"delimiter_hex": "00"}`, []*event.Message{{Direction: up, Binary: true, Payload: []byte{1, 0, 2, 0, 0, 3}, PayloadSize: 6}}, []uint64{3}, "1 bytes after the last delimiter"},
		{"binary multibyte split", `{"delimiter_hex": "ff00ff"}`, []*event.Message{{Direction: up, Binary: true, Payload: []byte{9, 0xff}, PayloadSize: 2}, {Direction: up, Binary: true, Payload: []byte{0}, PayloadSize: 1}, {Direction: up, Binary: true, Payload: []byte{0xff}, PayloadSize: 1}}, []uint64{0, 0, 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, "delimiter", tc.params)
			got, state := units(t, p, tc.msgs...)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("units = %v, want %v", got, tc.want)
				}
			}
			want := tc.rem
			if strings.HasPrefix(want, "0 bytes") {
				want = ""
			}
			if r := remainder(t, p, state); r != want {
				t.Fatalf("remainder = %q, want %q", r, want)
			}
		})
	}
}

func TestDelimiterHugeRecordBoundedCarry(t *testing.T) {
	p := mustNew(t, "delimiter", `{"delimiter": "--end--"}`)
	var state []byte
	chunk := bytes.Repeat([]byte("--end-x"), 10_000) // almost a delimiter, never one
	for i := range 200 {
		m := &event.Message{Direction: up, Payload: chunk, PayloadSize: uint64(len(chunk))}
		u, next, err := p.Units(nil, state, m)
		if err != nil || u != 0 {
			t.Fatalf("message %d: units %d err %v", i, u, err)
		}
		if len(next) > 2*(policy.MaxDelimiter-1)+40 {
			t.Fatalf("carry grew to %d bytes", len(next))
		}
		state = append(state[:0], next...)
	}
	want := "14000000 bytes after the last delimiter"
	if r := remainder(t, p, state); r != want {
		t.Fatalf("remainder = %q, want %q", r, want)
	}
	u1, next, err := p.Units(nil, state, payload(up, "--end-"))
	if err != nil || u1 != 0 {
		t.Fatalf("a delimiter's start: units %d err %v", u1, err)
	}
	u2, _, err := p.Units(nil, next, payload(up, "-"))
	if err != nil || u2 != 1 {
		t.Fatalf("the delimiter ending 14 MB, split: units %d err %v", u2, err)
	}
}

func TestDelimiterErrors(t *testing.T) {
	p := mustNew(t, "delimiter", `{}`)
	truncated := &event.Message{Direction: up, Payload: []byte("ab"), PayloadSize: 10}
	if _, _, err := p.Units(nil, nil, truncated); err == nil || !strings.Contains(err.Error(), "2 of 10") {
		t.Fatalf("truncated capture: err = %v", err)
	}
	for _, bad := range [][]byte{{0x80}, {5, 3, 'a'}, {1, 0, 1, 0, 9}, {1, 1, 'x', 0, 0}} {
		if _, _, err := p.Units(nil, bad, payload(up, "x\n")); err == nil {
			t.Fatalf("corrupt carry %x: no error", bad)
		}
	}
	if r := remainder(t, p, []byte{0x80}); !strings.Contains(r, "unreadable") {
		t.Fatalf("remainder of a corrupt carry = %q", r)
	}
}

// TestDelimiterCuts: however a byte stream is cut into messages, the total
// units and the remainder are those of the stream in one message.
func TestDelimiterCuts(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, params := range []string{`{}`, `{"delimiter": "\r\n"}`, `{"delimiter": "aab"}`, `{"delimiter": "abab"}`, `{"delimiter_hex": "000000"}`} {
		p := mustNew(t, "delimiter", params)
		alphabet := []byte("ab\r\n\x00")
		for trial := range 300 {
			stream := make([]byte, rng.IntN(400))
			for i := range stream {
				stream[i] = alphabet[rng.IntN(len(alphabet))]
			}
			whole, wstate := units(t, p, &event.Message{Direction: up, Payload: stream, PayloadSize: uint64(len(stream))})
			var msgs []*event.Message
			for rest := stream; len(rest) > 0 || rng.IntN(4) == 0; {
				n := rng.IntN(min(len(rest), 12) + 1)
				msgs = append(msgs, &event.Message{Direction: up, Payload: rest[:n], PayloadSize: uint64(n)})
				rest = rest[n:]
				if len(rest) == 0 && rng.IntN(2) == 0 {
					break
				}
			}
			cut, cstate := units(t, p, msgs...)
			if sum(cut) != whole[0] || remainder(t, p, cstate) != remainder(t, p, wstate) {
				t.Fatalf("%s trial %d (seed %d): %q cut in %d: %d units, remainder %q; whole: %d, %q",
					params, trial, seed, stream, len(msgs), sum(cut), remainder(t, p, cstate), whole[0], remainder(t, p, wstate))
			}
			if want := uint64(bytes.Count(stream, p.(policy.Delimiter).Delim())); whole[0] != want {
				t.Fatalf("%s: %q: %d units, bytes.Count says %d", params, stream, whole[0], want)
			}
		}
	}
}

// TestDelimiterCutsBothDirections: a request and a response byte stream,
// each cut at random and interleaved at random, bill what each whole
// stream bills, and leave the same remainder.
func TestDelimiterCutsBothDirections(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0xd1))
	p := mustNew(t, "delimiter", `{"delimiter": "\r\n"}`)
	alphabet := []byte("a\r\n")
	gen := func() []byte {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for trial := range 300 {
		streams := [2][]byte{gen(), gen()}
		dirs := [2]event.Direction{up, down}
		var want uint64
		var whole []*event.Message
		for i, s := range streams {
			want += uint64(bytes.Count(s, []byte("\r\n")))
			whole = append(whole, &event.Message{Direction: dirs[i], Payload: s, PayloadSize: uint64(len(s))})
		}
		_, wstate := units(t, p, whole...)
		var msgs []*event.Message
		rest := streams
		for len(rest[0])+len(rest[1]) > 0 {
			i := rng.IntN(2)
			n := rng.IntN(min(len(rest[i]), 9) + 1)
			msgs = append(msgs, &event.Message{Direction: dirs[i], Payload: rest[i][:n], PayloadSize: uint64(n)})
			rest[i] = rest[i][n:]
		}
		got, cstate := units(t, p, msgs...)
		if sum(got) != want || remainder(t, p, cstate) != remainder(t, p, wstate) {
			t.Fatalf("trial %d (seed %d): %d units, remainder %q; want %d, %q",
				trial, seed, sum(got), remainder(t, p, cstate), want, remainder(t, p, wstate))
		}
	}
}
