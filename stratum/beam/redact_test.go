package beam

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const secret = "sk_live_9f8e7d6c5b4a"

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		what Redaction
	}{
		{"miner login",
			`{"method":"login", "api_key":"` + secret + `", "id":"login","jsonrpc":"2.0"} `,
			`{"method":"login", "api_key":"<redacted>", "id":"login","jsonrpc":"2.0"} `, RedactReplaced},
		{"node-style login",
			`{"api_key":"` + secret + `","id":"login","jsonrpc":"2.0","method":"login"}`,
			`{"api_key":"<redacted>","id":"login","jsonrpc":"2.0","method":"login"}`, RedactReplaced},
		{"whitespace around colon",
			"{\"id\":\"login\",\"api_key\" \t\r\n:\n \"" + secret + "\" }",
			"{\"id\":\"login\",\"api_key\" \t\r\n:\n \"<redacted>\" }", RedactReplaced},
		{"escaped quote and backslash in value",
			`{"api_key":"a\"b\\\"` + secret + `\\","id":"x"}`,
			`{"api_key":"<redacted>","id":"x"}`, RedactReplaced},
		{"unicode escapes in value",
			`{"api_key":"\u0073\u006b_live_9f8e7d6c5b4a","id":"x"}`,
			`{"api_key":"<redacted>","id":"x"}`, RedactReplaced},
		{"escaped key",
			`{"api\u005fkey":"` + secret + `"}`,
			`{"api\u005fkey":"<redacted>"}`, RedactReplaced},
		{"fully escaped key",
			`{"\u0061\u0070\u0069\u005f\u006b\u0065\u0079":"` + secret + `"}`,
			`{"\u0061\u0070\u0069\u005f\u006b\u0065\u0079":"<redacted>"}`, RedactReplaced},
		{"case and separator variants",
			`{"API_KEY":"` + secret + `","apiKey":"` + secret + `","api-key":"` + secret + `"}`,
			`{"API_KEY":"<redacted>","apiKey":"<redacted>","api-key":"<redacted>"}`, RedactReplaced},
		{"duplicate keys",
			`{"api_key":"` + secret + `","id":"login","api_key":"` + secret + `2"}`,
			`{"api_key":"<redacted>","id":"login","api_key":"<redacted>"}`, RedactReplaced},
		{"non-string values",
			`{"api_key":["` + secret + `",{"x":"` + secret + `"}],"b":{"api_key":{"k":"` + secret + `"}},"c":[{"api_key":12345678}]}`,
			`{"api_key":"<redacted>","b":{"api_key":"<redacted>"},"c":[{"api_key":"<redacted>"}]}`, RedactReplaced},
		{"key text as a value is not a key",
			`{"id":"api_key","method":"api_key"}`,
			`{"id":"api_key","method":"api_key"}`, RedactNone},
		{"colon inside a string value",
			`{"id":"\"api_key\":","api_key":"` + secret + `"}`,
			`{"id":"\"api_key\":","api_key":"<redacted>"}`, RedactReplaced},
		{"no key",
			`{"id":"1","jsonrpc":"2.0","method":"cancel"}`,
			`{"id":"1","jsonrpc":"2.0","method":"cancel"}`, RedactNone},
		{"truncated login is dropped",
			`{"method":"login","api_key":"` + secret,
			`{"redacted":"payload dropped: not valid UTF-8 JSON","length":49}`, RedactDropped},
		{"unquoted key value is dropped",
			`{"api_key":` + secret + `}`,
			`{"redacted":"payload dropped: not valid UTF-8 JSON","length":32}`, RedactDropped},
		{"trailing garbage is dropped",
			`{"id":"x"}"api_key":"` + secret + `"`,
			`{"redacted":"payload dropped: not valid UTF-8 JSON","length":42}`, RedactDropped},
		{"invalid UTF-8 is dropped",
			"{\"api_key\":\"" + secret + "\xff\"}",
			`{"redacted":"payload dropped: not valid UTF-8 JSON","length":35}`, RedactDropped},
		{"empty line is dropped", ``,
			`{"redacted":"payload dropped: not valid UTF-8 JSON","length":0}`, RedactDropped},
	}
	for _, tt := range tests {
		got, what := AppendRedacted([]byte("P:"), []byte(tt.in))
		if string(got) != "P:"+tt.want || what != tt.what {
			t.Errorf("%s:\n got %s (%v)\nwant %s (%v)", tt.name, got, what, tt.want, tt.what)
		}
		if bytes.Contains(got, []byte("9f8e7d6c5b4a")) {
			t.Errorf("%s: output contains the key", tt.name)
		}
		if !json.Valid(got[2:]) {
			t.Errorf("%s: output is not valid JSON: %s", tt.name, got)
		}
	}
}

func TestRedactCopies(t *testing.T) {
	in := []byte(`{"id":"1","method":"cancel"}`)
	out := Redact(in)
	out[0] = 'X'
	if in[0] != '{' {
		t.Error("Redact returned the caller's slice")
	}
	if n := testing.AllocsPerRun(10, func() { AppendRedacted(make([]byte, 0, 128), in) }); n > 1 {
		t.Errorf("AppendRedacted allocates %.0f times", n)
	}
}

// TestRedactDecodedLoginAgrees: after redaction a login still decodes, with
// the placeholder as its key.
func TestRedactDecodedLoginAgrees(t *testing.T) {
	for _, l := range fixtureLines(t, "miner_lines.txt") {
		m, err := Decode(Redact([]byte(l)))
		if err != nil {
			t.Fatalf("redacted line does not decode: %v", err)
		}
		if login, ok := m.(*Login); ok && login.APIKey != Redacted {
			t.Errorf("redacted login has key %q", login.APIKey)
		}
	}
	if strings.Contains(Redaction(9).String(), "none") {
		t.Error("unknown redaction named like a known one")
	}
}
