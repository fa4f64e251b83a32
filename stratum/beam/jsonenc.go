package beam

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// errInvalidUTF8 is returned when a string to encode is not valid UTF-8; the
// node's JSON library refuses to write such strings.
var errInvalidUTF8 = errors.New("string is not valid UTF-8")

const lowerHex = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as the node's JSON
// library (nlohmann::json) escapes it: quote, backslash and control
// characters only, \u00xx in lower case, everything else verbatim.
func appendString(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return dst, errInvalidUTF8
	}
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		last = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
		}
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"'), nil
}

// appendKey appends `"key":` (keys are plain ASCII constants).
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendStringMember appends `"key":"value"`.
func appendStringMember(dst []byte, key, value string) ([]byte, error) {
	return appendString(appendKey(dst, key), value)
}

func appendUintMember(dst []byte, key string, v uint64) []byte {
	return strconv.AppendUint(appendKey(dst, key), v, 10)
}

// appendEnvelope appends `"jsonrpc":"2.0","method":"m"`, two keys that
// sort next to each other in every message.
func appendEnvelope(dst []byte, m Method) []byte {
	dst = append(dst, `"jsonrpc":"2.0","method":"`...)
	dst = append(dst, m.String()...)
	return append(dst, '"')
}

// isHex reports whether s is made of hex digits only (either case).
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// checkHex returns a reason when s is not exactly n hex digits.
func checkHex(s string, n int) string {
	if len(s) != n {
		return "want " + strconv.Itoa(n) + " hex digits, got " + strconv.Itoa(len(s)) + " bytes"
	}
	if !isHex(s) {
		return "not hex"
	}
	return ""
}
