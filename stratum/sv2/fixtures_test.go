package sv2

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

type fixture struct {
	name  string
	frame []byte
}

// loadFixtures reads testdata/frames.hex: "<message name> <hex frame>"
// lines, built by hand from the specification's layouts.
func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open("testdata/frames.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad fixture line %q", line)
		}
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		out = append(out, fixture{name, b})
	}
	if len(out) < 10 {
		t.Fatalf("only %d fixtures", len(out))
	}
	return out
}

func TestFixturesRoundTrip(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			h, payload, rest, err := SplitFrame(fx.frame, 0)
			if err != nil || len(rest) != 0 {
				t.Fatalf("SplitFrame: %v, %d bytes left", err, len(rest))
			}
			if c := Classify(h, payload); c.Name != fx.name {
				t.Fatalf("Classify name = %q, want %q", c.Name, fx.name)
			}
			m, err := ParseMessage(h, payload)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			out, err := AppendMessage([]byte{0xee}, m)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if !bytes.Equal(out[1:], fx.frame) {
				t.Fatalf("re-encoded frame\n got %x\nwant %x", out[1:], fx.frame)
			}
		})
	}
}

func TestFixtureFieldValues(t *testing.T) {
	byName := map[string]Message{}
	for _, fx := range loadFixtures(t) {
		h, payload, _, err := SplitFrame(fx.frame, 0)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(h, payload)
		if err != nil {
			t.Fatal(err)
		}
		byName[fx.name] = m
	}
	sc := byName["SetupConnection"].(*SetupConnection)
	if sc.MinVersion != 2 || sc.MaxVersion != 2 || sc.Flags != 4 || sc.EndpointHost != "0.0.0.0" || sc.EndpointPort != 3333 ||
		sc.Vendor != "Bitmain" || sc.HardwareVersion != "S9i 13.5" || sc.Firmware != "braiins-os-2018-09-22-1-hash" || sc.DeviceID != "some-device-uuid" {
		t.Errorf("SetupConnection = %+v", sc)
	}
	osc := byName["OpenStandardMiningChannel"].(*OpenStandardMiningChannel)
	if osc.RequestID != 1 || osc.UserIdentity != "pool.worker1" || osc.NominalHashRate != 1e12 || osc.MaxTarget[31] != 0xff {
		t.Errorf("OpenStandardMiningChannel = %+v", osc)
	}
	nmj := byName["NewMiningJob"].(*NewMiningJob)
	if nmj.ChannelID != 42 || nmj.JobID != 3 || nmj.MinNtime == nil || *nmj.MinNtime != 1700000000 || nmj.MerkleRoot[0] != 32 {
		t.Errorf("NewMiningJob = %+v", nmj)
	}
	ss := byName["SubmitSharesStandard"].(*SubmitSharesStandard)
	if *ss != (SubmitSharesStandard{ChannelID: 42, SequenceNumber: 7, JobID: 3, Nonce: 0xdeadbeef, Ntime: 1700000010, Version: 0x20000000}) {
		t.Errorf("SubmitSharesStandard = %+v", ss)
	}
	se := byName["SubmitSharesExtended"].(*SubmitSharesExtended)
	if len(se.TLVs) != 1 || se.TLVs[0].ExtensionType != ExtWorkerHashrateTracking || se.TLVs[0].FieldType != TLVFieldUserIdentity ||
		string(se.TLVs[0].Value) != "Worker_001" || !bytes.Equal(se.Extranonce, []byte{0xaa, 0xbb, 0xcc, 0xdd}) {
		t.Errorf("SubmitSharesExtended = %+v", se)
	}
	ok := byName["SubmitShares.Success"].(*SubmitSharesSuccess)
	if *ok != (SubmitSharesSuccess{ChannelID: 42, LastSequenceNumber: 8, NewSubmitsAcceptedCount: 2, NewSharesSum: 2048}) {
		t.Errorf("SubmitShares.Success = %+v", ok)
	}
	re := byName["RequestExtensions"].(*RequestExtensions)
	if re.RequestID != 5 || len(re.RequestedExtensions) != 1 || re.RequestedExtensions[0] != 2 {
		t.Errorf("RequestExtensions = %+v", re)
	}
	if raw := byName["Unknown(ext=0x4001,type=0x07)"].(*RawMessage); string(raw.Payload[4:]) != "opaque" || !raw.Header.ChannelMsg() {
		t.Errorf("raw = %+v", raw)
	}
}
