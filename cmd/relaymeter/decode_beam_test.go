package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/stratum/beam"
)

func runDecodeBeam(t *testing.T, in string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := decodeBeam(context.Background(), args, stdio{in: strings.NewReader(in), out: &out, err: &errOut})
	return out.String(), errOut.String(), err
}

func TestDecodeBeamFixtures(t *testing.T) {
	var in strings.Builder
	for _, name := range []string{"miner_lines.txt", "node_lines.txt"} {
		b, err := os.ReadFile("../../stratum/beam/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
	}
	out, _, err := runDecodeBeam(t, in.String()+"\n  \n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "skjdb7343636gucgjdjgd") {
		t.Fatalf("output contains the api_key:\n%s", out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	types := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("output line %d is not JSON: %v", n, err)
		}
		typ, _ := obj["type"].(string)
		types[typ]++
		if _, ok := obj["id"].(string); !ok {
			t.Errorf("output line %d has no id: %s", n, sc.Text())
		}
		if typ == "login" && obj["api_key"] != beam.Redacted {
			t.Errorf("login api_key = %v", obj["api_key"])
		}
	}
	if n != 16 {
		t.Errorf("printed %d objects, want 16 (blank lines skipped)", n)
	}
	want := map[string]int{"login": 2, "solution": 3, "job": 2, "cancel": 1, "result": 8}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("%d %s objects, want %d (all: %v)", types[k], k, v, types)
		}
	}
}

func TestDecodeBeamExactOutput(t *testing.T) {
	in := `{"method":"login", "api_key":"sk<&>", "id":"login","jsonrpc":"2.0"}` + "\n" +
		`{"code":0,"description":"Success","forkheight":5,"id":"login","jsonrpc":"2.0","method":"result","nonceprefix":"0a1"}` + "\n" +
		`{"id":"7","jsonrpc":"2.0","method":"cancel"}`
	want := `{"type":"login","id":"login","api_key":"<redacted>"}` + "\n" +
		`{"type":"result","id":"login","code":0,"description":"Success","nonceprefix":"0a1","forkheight":5}` + "\n" +
		`{"type":"cancel","id":"7"}` + "\n"
	out, _, err := runDecodeBeam(t, in)
	if err != nil || out != want {
		t.Fatalf("got %q, %v\nwant %q", out, err, want)
	}
}

func TestDecodeBeamMalformed(t *testing.T) {
	good := `{"id":"7","jsonrpc":"2.0","method":"cancel"}` + "\n"
	tests := []struct {
		name, in string
		want     error
		msg      []string
	}{
		{"bad JSON", good + good + `{"id":"7",` + "\n", beam.ErrCorrupted, []string{"line 3", "offset 90", "not valid JSON"}},
		{"empty id", good + `{"id":"","method":"cancel"}` + "\n", beam.ErrEmptyID, []string{"line 2", "offset 45"}},
		{"unknown method", `{"id":"1","method":"mining.notify"}`, beam.ErrUnknownMethod, []string{"line 1", "offset 0", "mining.notify"}},
		{"bad nonce", `{"id":"1","method":"solution","nonce":"xx","output":"00"}`, beam.ErrInvalidField, []string{"line 1", "nonce"}},
	}
	for _, tt := range tests {
		out, _, err := runDecodeBeam(t, tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			continue
		}
		for _, s := range tt.msg {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, s)
			}
		}
		if got := strings.Count(out, "\n"); got != strings.Count(tt.in, good) {
			t.Errorf("%s: printed %d objects before the error", tt.name, got)
		}
	}
}

func TestDecodeBeamLoginErrorDoesNotLeakKey(t *testing.T) {
	_, _, err := runDecodeBeam(t, `{"id":"login","method":"login","api_key":"sk_SECRET"`+"\n")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeBeamLineTooLong(t *testing.T) {
	_, _, err := runDecodeBeam(t, `{"id":"7","method":"cancel"}`+"\n"+strings.Repeat(" ", beam.MaxLineSize+10))
	var tl *beam.LineTooLongError
	if !errors.As(err, &tl) || tl.Line != 2 || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want LineTooLongError for line 2", err)
	}
}

func TestDecodeBeamArgsAndCancel(t *testing.T) {
	if _, _, err := runDecodeBeam(t, "", "extra"); !errors.Is(err, errUsage) {
		t.Errorf("extra argument: err = %v, want errUsage", err)
	}
	if _, errOut, err := runDecodeBeam(t, "", "-h"); !errors.Is(err, errUsage) || !strings.Contains(errOut, "usage: relaymeter decode beam") {
		t.Errorf("-h: err = %v, stderr %q", err, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := decodeBeam(ctx, nil, stdio{in: strings.NewReader(`{"id":"7","method":"cancel"}`), out: &out, err: &out})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err = %v", err)
	}
}
