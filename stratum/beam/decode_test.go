package beam

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// Valid field values used across tests.
var (
	hex16  = "3fa91c08f86bebb2"
	hex64  = strings.Repeat("a1b2c3d4", 8)
	hex208 = strings.Repeat("0123456789abcdef", 13)
)

func u64(v uint64) *uint64 { return &v }

// fixtureLines returns the lines of a testdata file.
func fixtureLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, MaxLineSize)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestRoundTrip(t *testing.T) {
	msgs := []struct {
		m    Message
		wire string
	}{
		{&Login{ID: "login", APIKey: "skjdb7343636gucgjdjgd"},
			`{"api_key":"skjdb7343636gucgjdjgd","id":"login","jsonrpc":"2.0","method":"login"}`},
		{&Login{ID: "l\"1", APIKey: "k\\<>&\u2028é\x01\t"},
			`{"api_key":"k\\<>&` + "\u2028é" + `\u0001\t","id":"l\"1","jsonrpc":"2.0","method":"login"}`},
		{&Solution{ID: "212", Nonce: hex16, Output: hex208},
			`{"id":"212","jsonrpc":"2.0","method":"solution","nonce":"` + hex16 + `","output":"` + hex208 + `"}`},
		{&Job{ID: "212", Input: hex64, Difficulty: 0xffffffff, Height: 18446744073709551615},
			`{"difficulty":4294967295,"height":18446744073709551615,"id":"212","input":"` + hex64 + `","jsonrpc":"2.0","method":"job"}`},
		{&Cancel{ID: "212"}, `{"id":"212","jsonrpc":"2.0","method":"cancel"}`},
		{&Result{ID: "login", Code: CodeLoginOK, Description: "Success", NoncePrefix: "0a1b2c"},
			`{"code":0,"description":"Success","id":"login","jsonrpc":"2.0","method":"result","nonceprefix":"0a1b2c"}`},
		{&Result{ID: "login", Code: CodeLoginOK, NoncePrefix: "abc"},
			`{"code":0,"description":"","id":"login","jsonrpc":"2.0","method":"result","nonceprefix":"abc"}`},
		{&Result{ID: "212", Code: CodeAccepted, Description: "accepted", BlockHash: hex64, ForkHeight: u64(0), ForkHeight2: u64(9)},
			`{"blockhash":"` + hex64 + `","code":1,"description":"accepted","forkheight":0,"forkheight2":9,"id":"212","jsonrpc":"2.0","method":"result"}`},
		{&Result{ID: "x", Code: CodeLoginFailed, Description: "Login failed"},
			`{"code":-32003,"description":"Login failed","id":"x","jsonrpc":"2.0","method":"result"}`},
	}
	for _, tt := range msgs {
		b, err := tt.m.Encode(nil)
		if err != nil {
			t.Fatalf("%T.Encode: %v", tt.m, err)
		}
		if string(b) != tt.wire {
			t.Errorf("%T.Encode =\n%s\nwant\n%s", tt.m, b, tt.wire)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, tt.m) {
			t.Errorf("Decode(Encode(%#v)) = %#v", tt.m, got)
		}
		// The typed Decode method agrees, and Encode appends.
		fresh := reflect.New(reflect.TypeOf(tt.m).Elem()).Interface().(Message)
		if err := fresh.Decode(b); err != nil || !reflect.DeepEqual(fresh, tt.m) {
			t.Errorf("%T.Decode = %v, %#v", fresh, err, fresh)
		}
		if b2, _ := tt.m.Encode([]byte("prefix")); string(b2) != "prefix"+tt.wire {
			t.Errorf("Encode does not append: %s", b2)
		}
	}
}

// TestNodeLinesByteExact: lines written as the node writes them re-encode
// to the same bytes.
func TestNodeLinesByteExact(t *testing.T) {
	lines := fixtureLines(t, "node_lines.txt")
	if len(lines) < 10 {
		t.Fatalf("only %d fixture lines", len(lines))
	}
	for _, line := range lines {
		m, err := Decode([]byte(line))
		if err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("Encode(%s): %v", line, err)
		}
		if string(b) != line {
			t.Errorf("re-encoded\n%s\nas\n%s", line, b)
		}
	}
}

// TestMinerLines: lines written by the reference miner (spaces, other key
// order, trailing blank) decode.
func TestMinerLines(t *testing.T) {
	lines := fixtureLines(t, "miner_lines.txt")
	want := []Method{MethodLogin, MethodSolution, MethodSolution}
	if len(lines) != len(want) {
		t.Fatalf("%d fixture lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		m, err := Decode([]byte(line))
		if err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		if m.Method() != want[i] {
			t.Errorf("line %d: method %v, want %v", i+1, m.Method(), want[i])
		}
	}
	m, _ := Decode([]byte(lines[0]))
	if l := m.(*Login); l.APIKey != "skjdb7343636gucgjdjgd" || l.ID != "login" {
		t.Errorf("login = %+v", *l)
	}
}

func TestDecodeQuirks(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Message
	}{
		{"escaped keys and values",
			`{"\u0069d":"l\u006fgin","method":"\u006cogin","api\u005fkey":"a\"b\\c\u00e9"}`,
			&Login{ID: "login", APIKey: "a\"b\\cé"}},
		{"duplicate keys: last wins",
			`{"id":"a","id":"b","method":"cancel","method":"login","api_key":"k1","api_key":"k2"}`,
			&Login{ID: "b", APIKey: "k2"}},
		{"unknown keys and nesting ignored",
			`{"params":{"id":"","method":"x"},"id":"9","extra":[1,{"a":"}"}],"method":"cancel"}`,
			&Cancel{ID: "9"}},
		{"whitespace and CR",
			" \t{ \"id\" : \"9\" ,\n\"method\" : \"cancel\" }\r",
			&Cancel{ID: "9"}},
		{"upper-case hex accepted",
			`{"id":"1","method":"solution","nonce":"` + strings.ToUpper(hex16) + `","output":"` + hex208 + `"}`,
			&Solution{ID: "1", Nonce: strings.ToUpper(hex16), Output: hex208}},
		{"node's 3-digit nonce prefix",
			`{"code":0,"description":"","id":"login","method":"result","nonceprefix":"abc"}`,
			&Result{ID: "login", NoncePrefix: "abc"}},
		{"draft's 6-byte nonce prefix",
			`{"code":0,"description":"","id":"login","method":"result","nonceprefix":"0123456789ab"}`,
			&Result{ID: "login", NoncePrefix: "0123456789ab"}},
		{"unknown code kept",
			`{"code":42,"description":"?","id":"1","method":"result"}`,
			&Result{ID: "1", Code: 42, Description: "?"}},
		{"empty api_key is well-formed (login then fails)",
			`{"id":"login","method":"login","api_key":""}`,
			&Login{ID: "login"}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.line))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	sol := func(nonce, output string) string {
		return `{"id":"1","method":"solution","nonce":` + nonce + `,"output":` + output + `}`
	}
	tests := []struct {
		line  string
		kind  Kind
		field string
	}{
		{``, KindCorrupted, ""},
		{`{"id":"1","method":"cancel"`, KindCorrupted, ""},
		{`{"id":"1","method":"cancel"} {}`, KindCorrupted, ""},
		{"{\"id\":\"1\xff\",\"method\":\"cancel\"}", KindCorrupted, ""},
		{`["id","method"]`, KindCorrupted, ""},
		{`"login"`, KindCorrupted, ""},
		{`{"id":1,"method":"cancel"}`, KindCorrupted, "id"},
		{`{"id":null,"method":"cancel"}`, KindCorrupted, "id"},
		{`{"id":"1","method":5}`, KindCorrupted, "method"},
		{`{"method":"cancel"}`, KindEmptyID, ""},
		{`{"id":"","method":"cancel"}`, KindEmptyID, ""},
		{`{"id":"","method":"bogus"}`, KindEmptyID, ""}, // id is checked first
		{`{"id":"1"}`, KindUnknownMethod, ""},
		{`{"id":"1","method":"bogus"}`, KindUnknownMethod, ""},
		{`{"id":"1","method":"null_method"}`, KindUnknownMethod, ""},
		{`{"id":"1","method":"Login"}`, KindUnknownMethod, ""},
		{`{"id":"1","method":"login"}`, KindCorrupted, "api_key"},
		{`{"id":"1","method":"login","api_key":7}`, KindCorrupted, "api_key"},
		{sol(`"`+hex16+`"`, `1`), KindCorrupted, "output"},
		{sol(`"`+hex16[1:]+`"`, `"`+hex208+`"`), KindInvalidField, "nonce"},
		{sol(`"`+hex16[1:]+`g"`, `"`+hex208+`"`), KindInvalidField, "nonce"},
		{sol(`"`+hex16+`"`, `"`+hex208+`0"`), KindInvalidField, "output"},
		{`{"id":"1","method":"job","input":"` + hex64 + `","difficulty":1}`, KindCorrupted, "height"},
		{`{"id":"1","method":"job","input":"` + hex64 + `","difficulty":"1","height":1}`, KindCorrupted, "difficulty"},
		{`{"id":"1","method":"job","input":"` + hex64 + `","difficulty":4294967296,"height":1}`, KindInvalidField, "difficulty"},
		{`{"id":"1","method":"job","input":"` + hex64 + `","difficulty":1.5,"height":1}`, KindInvalidField, "difficulty"},
		{`{"id":"1","method":"job","input":"` + hex64 + `","difficulty":1,"height":-1}`, KindInvalidField, "height"},
		{`{"id":"1","method":"job","input":"abc","difficulty":1,"height":1}`, KindInvalidField, "input"},
		{`{"id":"1","method":"result","description":""}`, KindCorrupted, "code"},
		{`{"id":"1","method":"result","code":0}`, KindCorrupted, "description"},
		{`{"id":"1","method":"result","code":2147483648,"description":""}`, KindInvalidField, "code"},
		{`{"id":"1","method":"result","code":0,"description":"","nonceprefix":null}`, KindCorrupted, "nonceprefix"},
		{`{"id":"1","method":"result","code":0,"description":"","nonceprefix":"0123456789abc"}`, KindInvalidField, "nonceprefix"},
		{`{"id":"1","method":"result","code":0,"description":"","nonceprefix":"xyz"}`, KindInvalidField, "nonceprefix"},
		{`{"id":"1","method":"result","code":0,"description":"","blockhash":"00"}`, KindInvalidField, "blockhash"},
		{`{"id":"1","method":"result","code":0,"description":"","forkheight":-5}`, KindInvalidField, "forkheight"},
	}
	sentinel := map[Kind]error{KindCorrupted: ErrCorrupted, KindEmptyID: ErrEmptyID,
		KindUnknownMethod: ErrUnknownMethod, KindInvalidField: ErrInvalidField}
	for _, tt := range tests {
		m, err := Decode([]byte(tt.line))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(%s) = %#v, %v; want a *DecodeError", tt.line, m, err)
			continue
		}
		if m != nil {
			t.Errorf("Decode(%s) returned a message with its error", tt.line)
		}
		if de.Kind != tt.kind || de.Field != tt.field {
			t.Errorf("Decode(%s): kind %v field %q (%v), want %v %q", tt.line, de.Kind, de.Field, err, tt.kind, tt.field)
		}
		for k, s := range sentinel {
			if errors.Is(err, s) != (k == tt.kind) {
				t.Errorf("Decode(%s): errors.Is(err, %v) = %v", tt.line, s, !(k == tt.kind))
			}
		}
		if !strings.HasPrefix(err.Error(), "beam: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}

func TestDecodeErrorCodes(t *testing.T) {
	for kind, want := range map[Kind]ResultCode{KindCorrupted: CodeMessageCorrupted, KindEmptyID: CodeEmptyID,
		KindUnknownMethod: CodeUnknownMethod, KindInvalidField: CodeRejected} {
		if got := (&DecodeError{Kind: kind}).Code(); got != want {
			t.Errorf("%v.Code() = %v, want %v", kind, got, want)
		}
	}
}

func TestDecodeErrorsDoNotQuoteValues(t *testing.T) {
	const secret = "sk_live_SECRETVALUE"
	for _, line := range []string{
		`{"id":"login","method":"login","api_key":"` + secret + `"`,
		`{"id":"login","method":"login","api_key":` + secret + `}`,
		`{"id":"login","method":"login","api_key":["` + secret + `"]}`,
		`{"id":"login","method":"` + secret + `","api_key":"` + secret + `"}`,
	} {
		_, err := Decode([]byte(line))
		if err == nil {
			t.Fatalf("Decode(%s) succeeded", line)
		}
		if strings.Contains(err.Error(), "SECRET") && !strings.Contains(line, `"method":"`+secret) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

func TestTypedDecodeWrongMethod(t *testing.T) {
	var l Login
	err := l.Decode([]byte(`{"id":"1","method":"cancel"}`))
	if !errors.Is(err, ErrUnknownMethod) || !strings.Contains(err.Error(), "want method login") {
		t.Errorf("Login.Decode(cancel) = %v", err)
	}
	if l != (Login{}) {
		t.Errorf("failed Decode modified the login: %+v", l)
	}
}

func TestEncodeValidates(t *testing.T) {
	bad := []Message{
		&Login{APIKey: "k"},
		&Login{ID: "login", APIKey: "bad\xffutf8"},
		&Solution{ID: "1", Nonce: "12", Output: hex208},
		&Solution{ID: "1", Nonce: hex16, Output: "zz"},
		&Job{ID: "1", Input: hex64[2:]},
		&Cancel{},
		&Result{ID: "1", NoncePrefix: "0123456789abc"},
		&Result{ID: "1", BlockHash: "ab"},
		&Result{ID: "1", Description: "\xff"},
	}
	for _, m := range bad {
		b, err := m.Encode(nil)
		if err == nil {
			t.Errorf("%#v encoded as %s", m, b)
		} else if !strings.HasPrefix(err.Error(), "beam: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}

func TestLoginFormattingRedacts(t *testing.T) {
	l := Login{ID: "login", APIKey: "sk_SECRET"}
	for _, s := range []string{fmt.Sprint(l), fmt.Sprintf("%+v", l), fmt.Sprintf("%#v", l), fmt.Sprint(&l),
		fmt.Sprintf("%v", []*Login{&l}), l.LogValue().String()} {
		if strings.Contains(s, "SECRET") || !strings.Contains(s, Redacted) {
			t.Errorf("formatted login %q leaks or omits redaction", s)
		}
	}
}

func TestMethodAndCodeNames(t *testing.T) {
	for m := MethodLogin; m <= MethodCancel; m++ {
		if ParseMethod(m.String()) != m {
			t.Errorf("ParseMethod(%q) != %d", m.String(), m)
		}
	}
	if ParseMethod("") != MethodUnknown || MethodUnknown.String() != "" {
		t.Error("MethodUnknown is not the empty name")
	}
	named := map[ResultCode]string{0: "login_ok", 1: "accepted", 2: "rejected", 3: "expired",
		-32000: "message_corrupted", -32001: "unknown_method", -32002: "empty_id", -32003: "login_failed", 7: "7"}
	for c, want := range named {
		if c.String() != want {
			t.Errorf("ResultCode(%d).String() = %q, want %q", int32(c), c.String(), want)
		}
	}
	if CodeLoginFailed.Description() != "Login failed" || ResultCode(9).Description() != "unknown" {
		t.Error("descriptions differ from the node's")
	}
}
