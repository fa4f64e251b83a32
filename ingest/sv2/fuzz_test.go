package sv2_test

import (
	"io"
	"net"
	"testing"
	"time"

	edgesv2 "github.com/relaymeter/relaymeter/ingest/sv2"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// FuzzSv2Frames sends arbitrary bytes as a miner's side of a connection
// and checks that the edge ends the connection once the miner stops
// sending, whatever the bytes (no panic, no hang).
func FuzzSv2Frames(f *testing.F) {
	setup0, _ := sv2.AppendMessage(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2})
	open, _ := sv2.AppendMessage(nil, &sv2.OpenStandardMiningChannel{RequestID: 1, UserIdentity: "acme.w"})
	submit, _ := sv2.AppendMessage(nil, &sv2.SubmitSharesStandard{ChannelID: 1, SequenceNumber: 1, Nonce: 1})
	f.Add(setup0)
	f.Add(append(append(append([]byte(nil), setup0...), open...), submit...))
	f.Add(append(append([]byte(nil), setup0...), 0, 0x80, 0x1a, 0xff, 0xff, 0xff))
	f.Add(setup0[:7])
	// Two accounts' channels, then a Job Declaration connection.
	open2, _ := sv2.AppendMessage(nil, &sv2.OpenStandardMiningChannel{RequestID: 2, UserIdentity: "beta.w"})
	f.Add(append(append(append([]byte(nil), setup0...), open...), open2...))
	setup1, _ := sv2.AppendMessage(nil, &sv2.SetupConnection{Protocol: 1, MinVersion: 2, MaxVersion: 2})
	f.Add(append(append([]byte(nil), setup1...), submit...))
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	// One edge for every input: each input is a connection of its own.
	e := setup(f, options{mod: func(c *edgesv2.Config) { c.MaxPayload = 1 << 16 }})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", e.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(in); err != nil {
			return // the edge may close before taking everything
		}
		_ = c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatalf("edge kept the connection open after the miner stopped sending %x", in)
		}
	})
}
