package event

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"eth_call", 128, "eth_call"},
		{"", 8, ""},
		{"eth_\x00", 128, "eth_\uFFFD"},
		{"\x00", 256, "\uFFFD"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"\xc3", 10, "\uFFFD"}, // a truncated two-byte sequence
		{"héllo", 3, "hé"},     // cut at a character boundary
		{"héllo", 2, "h"},      // é does not fit in the last byte
		{"日本語", 7, "日本"},       // three-byte characters
		{strings.Repeat("x", 300), 256, strings.Repeat("x", 256)},
		{"ok\uFFFD", 10, "ok\uFFFD"}, // a real replacement character stays
	} {
		got, changed := CleanText(c.in, c.max)
		if got != c.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
		if changed != (c.in != c.want) {
			t.Errorf("CleanText(%q, %d) changed = %v", c.in, c.max, changed)
		}
	}
}

func TestCleanTextAllocatesNothingWhenClean(t *testing.T) {
	s := "eth_getTransactionReceipt"
	if n := testing.AllocsPerRun(100, func() { CleanText(s, MaxMethodLen) }); n != 0 {
		t.Fatalf("%v allocations for a clean string", n)
	}
}

// FuzzCleanText checks what every caller relies on: the result is valid
// UTF-8, has no NUL, fits the limit, and cleaning it again changes nothing.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "eth_call", "eth_\x00", "\xff\xfe", "héllo", "日本語", "\xe6\x97"} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got, _ := CleanText(s, max)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || len(got) > max {
			t.Fatalf("CleanText(%q, %d) = %q", s, max, got)
		}
		if again, changed := CleanText(got, max); changed || again != got {
			t.Fatalf("cleaning %q again gave %q", got, again)
		}
	})
}

func TestPeekStreamID(t *testing.T) {
	id := make([]byte, 16)
	for i := range id {
		id[i] = byte(i + 1)
	}
	v, _, err := Seal(nil, &Event{StreamId: id, Seq: 7, EdgeId: "e", Body: &Event_Message{Message: &Message{Method: "m"}}}, [ChainSize]byte{})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := PeekStreamID(v)
	if !ok || string(got[:]) != string(id) {
		t.Fatalf("PeekStreamID = %x, %v", got, ok)
	}
	for _, bad := range [][]byte{nil, {}, {0x12, 3, 1, 2, 3}, v[:3], {0xff}} {
		if _, ok := PeekStreamID(bad); ok {
			t.Errorf("PeekStreamID(%x) found an id", bad)
		}
	}
}
