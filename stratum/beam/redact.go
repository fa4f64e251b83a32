package beam

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redacted replaces api_key values in redacted lines and formatted logins.
const Redacted = "<redacted>"

// Redaction says what AppendRedacted did to a line.
type Redaction uint8

// Outcomes of redaction.
const (
	// RedactNone: the line is valid JSON without an api_key; it is
	// copied unchanged.
	RedactNone Redaction = iota
	// RedactReplaced: every api_key value, at any depth and of any JSON
	// type, was replaced by the string Redacted; the rest is unchanged.
	RedactReplaced
	// RedactDropped: the line is not valid UTF-8 JSON, so where a key
	// might hide cannot be told; the payload was replaced by a JSON object
	// saying so and giving the line's length.
	RedactDropped
)

// String returns the outcome's name.
func (r Redaction) String() string {
	switch r {
	case RedactNone:
		return "none"
	case RedactReplaced:
		return "replaced"
	case RedactDropped:
		return "dropped"
	}
	return "unknown"
}

// Redact returns a copy of line (without its LF) that is safe to record:
// see AppendRedacted.
func Redact(line []byte) []byte {
	out, _ := AppendRedacted(nil, line)
	return out
}

// AppendRedacted appends to dst a copy of line in which the value of every
// object member whose key, unescaped, is api_key in any letter case (and
// with any '_' or '-' separators, so apiKey and api-key too) is replaced by
// "<redacted>", whitespace, key order, duplicates and nesting
// notwithstanding. A line that is not valid UTF-8 JSON is not copied: a
// placeholder object {"redacted":"...","length":N} is appended instead.
func AppendRedacted(dst, line []byte) ([]byte, Redaction) {
	if !json.Valid(line) || !utf8.Valid(line) {
		dst = append(dst, `{"redacted":"payload dropped: not valid UTF-8 JSON","length":`...)
		dst = strconv.AppendInt(dst, int64(len(line)), 10)
		return append(dst, '}'), RedactDropped
	}
	what := RedactNone
	last := 0
	for i := 0; i < len(line); {
		if line[i] != '"' {
			i++
			continue
		}
		end := stringEnd(line, i)
		colon := skipSpace(line, end)
		if colon >= len(line) || line[colon] != ':' || !isAPIKeyName(line[i+1:end-1]) {
			i = end // a value, or a key of no interest
			continue
		}
		vs := skipSpace(line, colon+1)
		ve := valueEnd(line, vs)
		dst = append(dst, line[last:vs]...)
		dst = append(dst, `"`+Redacted+`"`...)
		last, i, what = ve, ve, RedactReplaced
	}
	return append(dst, line[last:]...), what
}

// isAPIKeyName reports whether a raw key names an API key: unescaped and
// stripped of '_' and '-', it equals "apikey" under Unicode case folding.
func isAPIKeyName(raw []byte) bool {
	k := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		k = []byte(unquote(raw))
	}
	var buf [32]byte // "apikey" folds from at most 6 three-byte runes
	n := 0
	for _, c := range k {
		if c == '_' || c == '-' {
			continue
		}
		if n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	return strings.EqualFold(string(buf[:n]), "apikey")
}
