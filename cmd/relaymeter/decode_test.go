package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// sv2Fixtures reads the Stratum V2 codec's frame fixtures: lines of
// "<message name> <hex frame>".
func sv2Fixtures(t *testing.T) (names, hexFrames []string) {
	t.Helper()
	data, err := os.ReadFile("../../stratum/sv2/testdata/frames.hex")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, _ := strings.Cut(line, " ")
		names, hexFrames = append(names, name), append(hexFrames, hx)
	}
	if len(names) < 10 {
		t.Fatalf("only %d fixtures", len(names))
	}
	return names, hexFrames
}

func runDecodeIn(t *testing.T, input []byte, args ...string) ([]map[string]any, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runDecode(context.Background(), args, stdio{in: bytes.NewReader(input), out: &out, err: &errOut})
	var objs []map[string]any
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	for dec.More() {
		var o map[string]any
		if derr := dec.Decode(&o); derr != nil {
			t.Fatalf("output is not JSON lines: %v", derr)
		}
		objs = append(objs, o)
	}
	return objs, errOut.String(), err
}

func TestDecodeSv2Hex(t *testing.T) {
	names, frames := sv2Fixtures(t)
	// Spaces inside a frame, blank lines and comments are ignored.
	input := "# captured frames\n\n" + frames[0][:6] + "  " + frames[0][6:] + "\n" + strings.Join(frames[1:], "\n")
	objs, _, err := runDecodeIn(t, []byte(input), "sv2")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(names) {
		t.Fatalf("%d objects for %d frames", len(objs), len(names))
	}
	byType := map[string]map[string]any{}
	for i, o := range objs {
		if o["type"] != names[i] {
			t.Errorf("object %d type %v, want %s", i, o["type"], names[i])
		}
		byType[names[i]] = o
	}
	expect := map[string]map[string]string{
		"SetupConnection": {"subprotocol": "common", "protocol": "0", "min_version": "2", "endpoint_port": "3333", "vendor": "Bitmain",
			"hardware_version": "S9i 13.5", "device_id": "some-device-uuid", "channel_msg": "false"},
		"OpenStandardMiningChannel": {"request_id": "1", "user_identity": "pool.worker1", "nominal_hash_rate": "1e+12",
			"max_target": strings.Repeat("ff", 32)},
		"OpenStandardMiningChannel.Success": {"channel_id": "42", "extranonce_prefix": "01020304", "group_channel_id": "7"},
		"NewMiningJob":                      {"channel_msg": "true", "min_ntime": "1700000000", "job_id": "3"},
		"SubmitSharesStandard":              {"channel_id": "42", "sequence_number": "7", "nonce": "3735928559", "msg_type": "26"},
		"SubmitShares.Success":              {"last_sequence_number": "8", "new_submits_accepted_count": "2", "new_shares_sum": "2048"},
		"SubmitShares.Error":                {"sequence_number": "9", "error_code": "stale-share"},
		"RequestExtensions":                 {"extension_type": "1", "request_id": "5", "subprotocol": "extensions_negotiation"},
		"Unknown(ext=0x4001,type=0x07)": {"extension_type": "16385", "channel_id": "42",
			"payload": hex.EncodeToString([]byte("\x2a\x00\x00\x00opaque"))},
	}
	for typ, fields := range expect {
		o := byType[typ]
		for k, want := range fields {
			if got := stringify(o[k]); got != want {
				t.Errorf("%s.%s = %s, want %s", typ, k, got, want)
			}
		}
	}
	tlvs, _ := byType["SubmitSharesExtended"]["tlvs"].([]any)
	if len(tlvs) != 1 || stringify(tlvs[0].(map[string]any)["value"]) != hex.EncodeToString([]byte("Worker_001")) {
		t.Errorf("SubmitSharesExtended tlvs = %v", byType["SubmitSharesExtended"]["tlvs"])
	}
}

func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return "<missing>"
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSv2FieldNamesDoNotCollideWithHeaderKeys(t *testing.T) {
	for _, info := range sv2.Messages() {
		b, err := json.Marshal(info.New())
		if err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range sv2HeaderKeys {
			if _, dup := fields[k]; dup {
				t.Errorf("%s has a field %q that collides with a header key", info.Name, k)
			}
		}
	}
}

func TestDecodeSv2Raw(t *testing.T) {
	names, frames := sv2Fixtures(t)
	var raw []byte
	for _, f := range frames {
		b, _ := hex.DecodeString(f)
		raw = append(raw, b...)
	}
	objs, _, err := runDecodeIn(t, raw, "sv2", "--raw")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(names) || objs[len(objs)-1]["type"] != names[len(names)-1] {
		t.Fatalf("got %d objects, last %v", len(objs), objs[len(objs)-1]["type"])
	}
}

func TestDecodeSv2Malformed(t *testing.T) {
	_, frames := sv2Fixtures(t)
	good := frames[0]
	submit, _ := hex.DecodeString("00801a1800002a0000000700000003000000efbeadde0af1536500000020")
	cases := []struct {
		name  string
		input string
		args  []string
		want  []string // substrings of the error
	}{
		{"bad hex", good + "\nzz\n", nil, []string{"line 2", "invalid hex"}},
		{"odd hex", good + "\n0\n", nil, []string{"line 2", "invalid hex"}},
		{"short header", "000001\n", nil, []string{"line 1", "need 6 bytes"}},
		{"cut payload", "00801a1800002a00\n", nil, []string{"line 1", "need 24 bytes, have 2"}},
		{"two frames on a line", good + good + "\n", nil, []string{"line 1", "after the frame"}},
		{"bad field", "00801a0400002a000000\n", nil, []string{"line 1", "SubmitSharesStandard", "truncated at offset 4"}},
		{"too large", "000010ffffff\n", []string{"--max-payload", "1024"}, []string{"line 1", "16777215 bytes exceeds limit of 1024"}},
		{"raw cut", string(submit[:20]), []string{"--raw"}, []string{"offset 6", "unexpected EOF"}},
		{"raw second frame bad", string(submit) + "\x00\x80\x1a\x01\x00\x00\x00", []string{"--raw"}, []string{"offset 30", "SubmitSharesStandard"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runDecodeIn(t, []byte(c.input), append([]string{"sv2"}, c.args...)...)
			if err == nil {
				t.Fatal("malformed input decoded without error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDecodeExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	sio := stdio{in: strings.NewReader("zz\n"), out: &out, err: &errOut}
	if code := run(context.Background(), []string{"decode", "sv2"}, sio); code != 1 || !strings.Contains(errOut.String(), "line 1") {
		t.Fatalf("malformed input: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"decode", "sv3"}, sio); code != 2 || !strings.Contains(errOut.String(), "unknown format") {
		t.Fatalf("unknown format: exit %d, stderr %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"decode"}, sio); code != 2 {
		t.Fatalf("no format: exit %d", code)
	}
	if code := run(context.Background(), []string{"decode", "sv2", "--max-payload", "0"}, sio); code != 2 {
		t.Fatalf("bad --max-payload: exit %d", code)
	}
}

func TestDecodeDispatchesBeam(t *testing.T) {
	var errOut bytes.Buffer
	err := runDecode(context.Background(), []string{"beam"}, stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errOut})
	if errors.Is(err, errUsage) && strings.Contains(errOut.String(), "unknown format") {
		t.Fatal("decode beam was not dispatched to decodeBeam")
	}
}

func TestDecodeHonoursCancellation(t *testing.T) {
	_, frames := sv2Fixtures(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runDecode(ctx, []string{"sv2"}, stdio{in: strings.NewReader(frames[0] + "\n"), out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
