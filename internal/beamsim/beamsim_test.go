package beamsim

import (
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/stratum/beam"
)

func TestBeamsimNodeAndMiner(t *testing.T) {
	cert, err := SelfSigned("node")
	if err != nil {
		t.Fatal(err)
	}
	n, err := StartNode(cert.ServerConfig(), "good")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	m, err := Dial(n.Addr(), cert.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Login("good"); err != nil || code != beam.CodeLoginOK || m.Job != "1" {
		t.Fatalf("login: %v %v job %q", code, err, m.Job)
	}
	codes, err := m.Mine(3)
	if err != nil || len(codes) != 3 || codes[2] != beam.CodeAccepted || m.Job != "4" {
		t.Fatalf("mine: %v %v job %q", codes, err, m.Job)
	}
	m.Close()
	mc := m.Counts()
	// The node counts a line once it has read it; give it the moment.
	for deadline := time.Now().Add(5 * time.Second); n.Counts() != (Counts{LinesIn: mc.LinesOut, BytesIn: mc.BytesOut, LinesOut: mc.LinesIn, BytesOut: mc.BytesIn}); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node %+v, miner %+v", n.Counts(), mc)
		}
	}
	if mc.LinesOut != 4 || mc.LinesIn != 8 {
		t.Fatalf("miner %+v, want 4 lines out and 8 in", mc)
	}

	bad, err := Dial(n.Addr(), cert.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if code, err := bad.Login("wrong"); err != nil || code != beam.CodeLoginFailed {
		t.Fatalf("wrong key: %v %v", code, err)
	}
	if _, err := bad.Read(); err == nil {
		t.Fatal("the node kept a connection whose login failed")
	}
}
