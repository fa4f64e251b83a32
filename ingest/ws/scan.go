package ws

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A JSON-RPC envelope scanner: it validates a message as encoding/json
// would and picks out, as raw JSON values, the fields the classifier needs,
// without decoding anything else and without allocating. The classifier
// must classify exactly as the encoding/json one it replaced (kept as the
// oracle in classify_oracle_test.go, with a fuzz target comparing the two),
// so it follows encoding/json's rules where they matter: the whole message
// must be valid JSON (one value, then only whitespace) nested at most
// maxDepth deep; object keys match field names case-insensitively as
// encoding/json does (bytes.EqualFold of the decoded key); the last of
// duplicate keys wins, except that null leaves a string field as it was;
// a method that is neither a string nor null is a type error.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// rawEnv is one JSON-RPC object's routing fields, as raw JSON values (nil
// when absent). method is the raw string token (with its quotes) of the
// last non-null method.
type rawEnv struct {
	id, method, params, result, errv []byte
}

func (e *rawEnv) hasID() bool   { return len(e.id) > 0 && !isNull(e.id) }
func (e *rawEnv) isError() bool { return len(e.errv) > 0 && !isNull(e.errv) }

func isNull(raw []byte) bool { return len(raw) == 4 && string(raw) == "null" }

// scanner reads one JSON text. Its stack records, one bit per nesting
// level, whether each open container is an object: inline for 128 levels,
// grown for deeper (hostile) nesting, and shrunk back for the next text.
type scanner struct {
	data   []byte
	i      int
	depth  int
	stack  []uint64
	inline [2]uint64
}

func (s *scanner) reset(data []byte) {
	s.data, s.i, s.depth = data, 0, 0
	if len(s.stack) != len(s.inline) {
		s.stack = s.inline[:]
	}
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.data)
}

// expect consumes c after whitespace.
func (s *scanner) expect(c byte) bool {
	s.ws()
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// open enters a container, within maxDepth.
func (s *scanner) open(object bool) bool {
	if s.depth >= maxDepth {
		return false
	}
	word, bit := s.depth/64, uint(s.depth%64)
	for word >= len(s.stack) {
		s.stack = append(s.stack, 0)
	}
	if object {
		s.stack[word] |= 1 << bit
	} else {
		s.stack[word] &^= 1 << bit
	}
	s.depth++
	s.i++
	return true
}

// inObject reports whether the innermost open container is an object.
func (s *scanner) inObject() bool {
	d := s.depth - 1
	return s.stack[d/64]&(1<<uint(d%64)) != 0
}

// value skips one JSON value after whitespace, returning its raw bytes.
func (s *scanner) value() ([]byte, bool) {
	s.ws()
	start := s.i
	var ok bool
	switch c := s.peek(); {
	case c == '{' || c == '[':
		ok = s.nested()
	case c == '"':
		_, ok = s.str()
	case c == 't':
		ok = s.literal("true")
	case c == 'f':
		ok = s.literal("false")
	case c == 'n':
		ok = s.literal("null")
	default:
		ok = s.number()
	}
	return s.data[start:s.i], ok
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// plain marks the bytes a string holds as they are: all but the quote, the
// backslash and control characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str skips a string at s.i, returning whether it has escapes.
func (s *scanner) str() (escaped, ok bool) {
	s.i++ // the opening quote
	for {
		for s.i < len(s.data) && plain[s.data[s.i]] {
			s.i++
		}
		if s.i == len(s.data) {
			return false, false
		}
		switch s.data[s.i] {
		case '"':
			s.i++
			return escaped, true
		case '\\':
			escaped = true
			if !s.escape() {
				return false, false
			}
		default: // a control character
			return false, false
		}
	}
}

// escape skips one escape sequence at s.i (its backslash).
func (s *scanner) escape() bool {
	if s.i+1 >= len(s.data) {
		return false
	}
	switch s.data[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.data) {
			return false
		}
		for _, h := range s.data[s.i+2 : s.i+6] {
			if !isHex(h) {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// key reads an object key and its colon, returning the raw token.
func (s *scanner) key() (tok []byte, escaped, ok bool) {
	s.ws()
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i
	if escaped, ok = s.str(); !ok {
		return nil, false, false
	}
	tok = s.data[start:s.i]
	return tok, escaped, s.expect(':')
}

// nested skips the object or array at s.i, without recursion.
func (s *scanner) nested() bool {
	base := s.depth
	want := true // a value is due (after an opening bracket, a colon or a comma)
	first := false
	for {
		if want {
			s.ws()
			c := s.peek()
			if first && (c == '}' && s.inObject() || c == ']' && !s.inObject()) {
				s.i++
				s.depth--
				want, first = false, false
			} else if c == '{' || c == '[' {
				if !s.open(c == '{') {
					return false
				}
				first = true
				if c == '{' {
					if s.ws(); s.peek() == '}' {
						continue // closed as empty above
					}
					if _, _, ok := s.key(); !ok {
						return false
					}
					first = false // a value is due, not a closing brace
				}
				continue
			} else if _, ok := s.value(); !ok {
				return false
			} else {
				want, first = false, false
			}
		}
		if s.depth == base {
			return true
		}
		if !s.afterValue(&want) {
			return false
		}
	}
}

// afterValue reads what follows a value inside a container: a comma (and,
// in an object, the next key), setting *want, or the closing bracket.
func (s *scanner) afterValue(want *bool) bool {
	s.ws()
	obj := s.inObject()
	switch c := s.peek(); {
	case c == ',':
		s.i++
		if obj {
			if _, _, ok := s.key(); !ok {
				return false
			}
		}
		*want = true
	case c == '}' && obj, c == ']' && !obj:
		s.i++
		s.depth--
	default:
		return false
	}
	return true
}

// Field names of a JSON-RPC envelope, as scanEnvelope matches keys.
const (
	fieldNone = iota
	fieldID
	fieldMethod
	fieldParams
	fieldResult
	fieldError
)

// field matches a raw key token to an envelope field as encoding/json
// matches keys to struct fields: exactly, or else case-insensitively.
func field(tok []byte, escaped bool) int {
	name := tok[1 : len(tok)-1]
	switch string(name) {
	case "id":
		return fieldID
	case "method":
		return fieldMethod
	case "params":
		return fieldParams
	case "result":
		return fieldResult
	case "error":
		return fieldError
	}
	if escaped {
		name = unquote(tok)
	}
	for i, f := range [...]string{"id", "method", "params", "result", "error"} {
		if bytes.EqualFold(name, []byte(f)) {
			return fieldID + i
		}
	}
	return fieldNone
}

// envelope reads the object at s.i into e. It fails on invalid JSON and on
// a method that is neither a string nor null, as encoding/json would.
func (s *scanner) envelope(e *rawEnv) bool {
	*e = rawEnv{}
	if !s.open(true) {
		return false
	}
	if s.ws(); s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		tok, escaped, ok := s.key()
		if !ok {
			return false
		}
		v, ok := s.value()
		if !ok {
			return false
		}
		switch field(tok, escaped) {
		case fieldID:
			e.id = v
		case fieldMethod:
			if v[0] == '"' {
				e.method = v
			} else if !isNull(v) {
				return false // a type error: encoding/json rejects the message
			}
		case fieldParams:
			e.params = v
		case fieldResult:
			e.result = v
		case fieldError:
			e.errv = v
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// unquote decodes a valid JSON string token as encoding/json does: escapes
// resolved, a lone or broken surrogate escape and each byte that is not
// valid UTF-8 replaced with U+FFFD. A token without escapes or invalid
// UTF-8 comes back as its contents, without copying.
func unquote(tok []byte) []byte {
	s := tok[1 : len(tok)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			var n int
			b, n = unescape(b, s[r:])
			r += n
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return b
}

// unescape appends the escape at the start of s, returning how many bytes
// it took.
func unescape(b, s []byte) ([]byte, int) {
	switch s[1] {
	case 'b':
		return append(b, '\b'), 2
	case 'f':
		return append(b, '\f'), 2
	case 'n':
		return append(b, '\n'), 2
	case 'r':
		return append(b, '\r'), 2
	case 't':
		return append(b, '\t'), 2
	case 'u':
		rr := hex4(s[2:6])
		if !utf16.IsSurrogate(rr) {
			return utf8.AppendRune(b, rr), 6
		}
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if dec := utf16.DecodeRune(rr, hex4(s[8:12])); dec != unicode.ReplacementChar {
				return utf8.AppendRune(b, dec), 12
			}
		}
		return utf8.AppendRune(b, unicode.ReplacementChar), 6
	}
	return append(b, s[1]), 2 // " \ /
}

// hex4 decodes four hex digits, -1 if they are not.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
