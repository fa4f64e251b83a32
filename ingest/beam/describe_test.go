package beam

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/stratum/beam"
)

// marks are what redaction itself writes.
const marks = beam.Redacted + `{"redacted":"payload dropped: not valid UTF-8 JSON","length":`

// FuzzDescribe: whatever a line holds, describing it for the record never
// panics, sizes it as it crossed, and records no api_key value it carries.
func FuzzDescribe(f *testing.F) {
	f.Add("secret-key-123", []byte(`"id":"login","jsonrpc":"2.0","method":"login"}`), false)
	f.Add("k", []byte(`"id":"1","method":"solution","nonce":"00","output":"00"}`), true)
	f.Add("0123456789", []byte(`not json`), false)
	f.Add("abcdefgh", []byte(`"nested":{"API-KEY":"abcdefgh"},"id":"x","method":"login"}`), false)
	f.Fuzz(func(t *testing.T, key string, rest []byte, unterminated bool) {
		q, err := json.Marshal(key)
		if err != nil || bytes.IndexByte(rest, '\n') >= 0 || len(rest) > beam.MaxLineSize {
			return
		}
		line := append(append([]byte(`{"api_key":`), q...), ',')
		line = append(line, rest...)
		for _, dir := range []beam.Direction{beam.MinerToNode, beam.NodeToMiner} {
			var m event.Message
			describe(&m, dir, line, unterminated, nil)
			want := uint64(len(line))
			if !unterminated {
				want++
			}
			if m.WireSize != want || m.PayloadSize != want || len(m.PayloadSha256) != 32 {
				t.Fatalf("sizes %d/%d sha %d bytes for a %d-byte line", m.WireSize, m.PayloadSize, len(m.PayloadSha256), want)
			}
			secret := q[1 : len(q)-1]
			// A key that is part of the rest of the line, of the redaction
			// marks or of a length cannot be told from them.
			recordedAnyway := bytes.Contains(rest, secret) || bytes.Contains([]byte(marks), secret)
			if len(secret) >= 6 && !recordedAnyway && bytes.Contains(m.Payload, secret) {
				t.Fatalf("api key %q recorded in %q", secret, m.Payload)
			}
			if m.Role == event.Role_ROLE_UNSPECIFIED {
				t.Fatal("no role")
			}
		}
	})
}
