package beam

import (
	"bytes"
	"encoding/json"
	"errors"
)

// The helpers below walk JSON that json.Valid has accepted; on such input
// they cannot run past the end of the slice.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string whose quote is at b[i].
func stringEnd(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return len(b)
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// span locates a value in a line; a zero span (end == 0) means absent.
type span struct{ start, end int }

func (s span) present() bool { return s.end > 0 }

// members iterates over the members of the top-level object of valid JSON.
type members struct {
	b []byte
	i int
}

// newMembers starts iterating over b's top-level object; ok is false when
// the top-level value is not an object.
func newMembers(b []byte) (members, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return members{}, false
	}
	return members{b: b, i: i + 1}, true
}

// next returns the raw key (without quotes, still escaped) and the value's
// span, or ok == false after the last member.
func (m *members) next() (key []byte, val span, ok bool) {
	i := skipSpace(m.b, m.i)
	if i < len(m.b) && m.b[i] == ',' {
		i = skipSpace(m.b, i+1)
	}
	if i >= len(m.b) || m.b[i] != '"' {
		return nil, span{}, false
	}
	ke := stringEnd(m.b, i)
	key = m.b[i+1 : ke-1]
	vs := skipSpace(m.b, skipSpace(m.b, ke)+1) // past ':'
	ve := valueEnd(m.b, vs)
	m.i = ve
	return key, span{vs, ve}, true
}

// unquote returns the text of a raw (quoted-content) JSON string.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var s string
	if json.Unmarshal(q, &s) != nil {
		return ""
	}
	return s
}

// field identifies the keys the protocol uses.
type field uint8

const (
	fOther field = iota
	fID
	fMethod
	fAPIKey
	fNonce
	fOutput
	fInput
	fDifficulty
	fHeight
	fCode
	fDescription
	fNoncePrefix
	fBlockHash
	fForkHeight
	fForkHeight2
	numFields
)

// name returns the field's key.
func (f field) name() string {
	switch f {
	case fID:
		return "id"
	case fMethod:
		return "method"
	case fAPIKey:
		return "api_key"
	case fNonce:
		return "nonce"
	case fOutput:
		return "output"
	case fInput:
		return "input"
	case fDifficulty:
		return "difficulty"
	case fHeight:
		return "height"
	case fCode:
		return "code"
	case fDescription:
		return "description"
	case fNoncePrefix:
		return "nonceprefix"
	case fBlockHash:
		return "blockhash"
	case fForkHeight:
		return "forkheight"
	case fForkHeight2:
		return "forkheight2"
	}
	return ""
}

// fieldOf returns the field a raw key names, matching exactly after
// unescaping as the node does.
func fieldOf(raw []byte) field {
	if bytes.IndexByte(raw, '\\') >= 0 {
		raw = []byte(unquote(raw))
	}
	switch string(raw) {
	case "id":
		return fID
	case "method":
		return fMethod
	case "api_key":
		return fAPIKey
	case "nonce":
		return fNonce
	case "output":
		return fOutput
	case "input":
		return fInput
	case "difficulty":
		return fDifficulty
	case "height":
		return fHeight
	case "code":
		return fCode
	case "description":
		return fDescription
	case "nonceprefix":
		return fNoncePrefix
	case "blockhash":
		return fBlockHash
	case "forkheight":
		return fForkHeight
	case "forkheight2":
		return fForkHeight2
	}
	return fOther
}

// syntaxOffset returns where the JSON in b first fails to parse.
func syntaxOffset(b []byte) int {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return int(se.Offset)
	}
	return len(b)
}
