package event

import (
	"strings"
	"unicode/utf8"
)

// Length limits of the strings an edge takes from the wire, in bytes.
const (
	// MaxMethodLen bounds a method name (JSON-RPC method, Sv2 message
	// name, Beam method).
	MaxMethodLen = 128
	// MaxIDLen bounds an identifier: an application, a JSON-RPC or Beam
	// id, a subscription id, a user identity.
	MaxIDLen = 256
)

// CleanText returns s as an event may carry it, and whether that differs
// from s: valid UTF-8 without NUL, at most max bytes long. Each byte that
// is not part of a valid UTF-8 sequence and each NUL becomes U+FFFD, the
// replacement character, so that a tampered string stays visibly tampered;
// the result is then cut to max bytes at the last whole character that
// fits. A string that qualifies is returned as it is, without allocating.
//
// Edges clean every string they take from the wire before it reaches an
// event (the raw bytes stay in the payload and its sha256), and the meter
// cleans again before anything reaches Postgres, whose text type refuses
// NUL and invalid UTF-8.
func CleanText(s string, max int) (string, bool) {
	if clean(s, max) {
		return s, false
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + utf8.UTFMax)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0 {
			r = utf8.RuneError
		}
		w := utf8.RuneLen(r)
		if b.Len()+w > max {
			break
		}
		b.WriteRune(r)
		i += n
	}
	return b.String(), true
}

// clean reports whether s is valid UTF-8 without NUL and at most max
// bytes, checking ASCII a byte at a time and anything else with utf8.
func clean(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && strings.IndexByte(s[i:], 0) < 0
		}
	}
	return true
}
