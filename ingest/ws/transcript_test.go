package ws_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/ws"
)

// TestTranscripts replays the transcripts of testdata/transcripts, in the
// go-ethereum style, through a real edge (both forwarding modes), recorder
// (kfake) and simulated node over loopback. Lines:
//
//	// comment
//	limits {json}      the default service's ws.Limits, before the client connects
//	--> {json}         the client sends it ("$name" is replaced by what $name matched)
//	<-- {json}         the client reads the next message, which must match:
//	                   "*" matches any value, "$name" binds (then must equal) a value
//	!! newHead         the node makes a head and pushes it to newHeads subscribers
//	== absorbed N, answered M
//	                   N client messages were recorded as absorbed by the edge
//	                   and M answers of origin EDGE (none forwarded to the node)
//
// After each transcript, the recorded events are checked against what the
// node received: every message has the origin its direction says, or EDGE
// for the edge's answers, which follow the request they answer; the node
// received exactly the calls of the client messages not absorbed; the
// close's forwarded_to_upstream_through_seq is the last forwarded one.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, mode := range []struct {
		name string
		fwd  ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}} {
		for _, file := range files {
			t.Run(mode.name+"/"+strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
				runTranscript(t, file, mode.fwd)
			})
		}
	}
}

type transcriptLine struct {
	no         int
	op, arg    string
	absorbed   int
	answered   int
	checkCount bool
}

func readTranscript(t *testing.T, file string) (lines []transcriptLine, limits ws.Limits, counts *transcriptLine) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for no := 1; sc.Scan(); no++ {
		line := strings.TrimSpace(sc.Text())
		op, arg, _ := strings.Cut(line, " ")
		switch op {
		case "", "//":
		case "limits":
			dec := json.NewDecoder(strings.NewReader(arg))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&limits); err != nil {
				t.Fatalf("%s:%d: limits: %v", file, no, err)
			}
		case "-->", "<--", "!!":
			lines = append(lines, transcriptLine{no: no, op: op, arg: arg})
		case "==":
			c := transcriptLine{no: no, checkCount: true}
			if _, err := fmt.Sscanf(arg, "absorbed %d, answered %d", &c.absorbed, &c.answered); err != nil {
				t.Fatalf("%s:%d: %v", file, no, err)
			}
			counts = &c
		default:
			t.Fatalf("%s:%d: unknown line %q", file, no, line)
		}
	}
	if counts == nil {
		t.Fatalf("%s: no == line", file)
	}
	return lines, limits, counts
}

func runTranscript(t *testing.T, file string, fwd ws.Forwarding) {
	lines, limits, counts := readTranscript(t, file)
	e := setup(t, func(c *ws.Config) { c.Limits, c.Forwarding = limits, fwd })
	c := e.dial(t, "app")
	vars := map[string]any{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range lines {
		switch l.op {
		case "-->":
			msg := l.arg
			for name, v := range vars {
				b, _ := json.Marshal(v)
				msg = strings.ReplaceAll(msg, `"$`+name+`"`, string(b))
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatalf("line %d: write: %v", l.no, err)
			}
		case "<--":
			var want any
			if err := json.Unmarshal([]byte(l.arg), &want); err != nil {
				t.Fatalf("line %d: %v", l.no, err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("line %d: read: %v", l.no, err)
			}
			var v any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("line %d: the client got invalid JSON %s", l.no, got)
			}
			if !matchJSON(want, v, vars) {
				t.Fatalf("line %d:\n got %s\nwant %s", l.no, got, l.arg)
			}
		case "!!":
			if l.arg != "newHead" {
				t.Fatalf("line %d: unknown action %q", l.no, l.arg)
			}
			e.up.node.NewHead(ctx)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the connection to end", func() bool { return e.metric(t, "relaymeter_ws_edge_connections_active", "") == 0 })
	var limited float64
	for _, l := range []string{"batch", "method", "rate"} {
		limited += e.metric(t, "relaymeter_ws_edge_absorbed_total", l)
	}
	if int(limited) != counts.absorbed {
		t.Errorf("relaymeter_ws_edge_absorbed_total sums to %v, want %d", limited, counts.absorbed)
	}
	checkTranscriptEvents(t, only(t, e.events(t)), counts, e.up.node.Calls())
}

// checkTranscriptEvents checks a transcript's recorded stream: see
// TestTranscripts.
func checkTranscriptEvents(t *testing.T, evs []*event.Event, counts *transcriptLine, calls uint64) {
	t.Helper()
	var absorbed, answered int
	var forwardedCalls, lastForwarded uint64
	pendingAnswers := 0
	var closed *event.StreamClosed
	for _, ev := range evs {
		if cl := ev.GetClosed(); cl != nil {
			closed = cl
		}
		m := ev.GetMessage()
		if m == nil {
			continue
		}
		switch {
		case m.Direction == event.Direction_CLIENT_TO_UPSTREAM:
			if m.Origin != event.Origin_CLIENT {
				t.Errorf("seq %d: a client message of origin %v", ev.Seq, m.Origin)
			}
			if m.AbsorbedByEdge {
				absorbed++
				if m.Role == event.Role_REQUEST {
					pendingAnswers++
				}
				continue
			}
			forwardedCalls += uint64(max(m.BatchSize, 1))
			lastForwarded = ev.Seq
		case m.Origin == event.Origin_EDGE:
			answered++
			if pendingAnswers == 0 {
				t.Errorf("seq %d: an edge answer before the request it answers", ev.Seq)
			}
			pendingAnswers--
			if m.Role != event.Role_ERROR || m.AbsorbedByEdge || len(m.PayloadSha256) != 32 {
				t.Errorf("seq %d: edge answer recorded as role %v, absorbed %v", ev.Seq, m.Role, m.AbsorbedByEdge)
			}
		case m.Origin != event.Origin_UPSTREAM || m.AbsorbedByEdge:
			t.Errorf("seq %d: an upstream message of origin %v, absorbed %v", ev.Seq, m.Origin, m.AbsorbedByEdge)
		}
	}
	if absorbed != counts.absorbed || answered != counts.answered {
		t.Errorf("recorded %d absorbed client messages and %d edge answers, want %d and %d", absorbed, answered, counts.absorbed, counts.answered)
	}
	if forwardedCalls != calls {
		t.Errorf("the node received %d calls; the forwarded client messages hold %d", calls, forwardedCalls)
	}
	if closed == nil || closed.ForwardedToUpstreamThroughSeq == nil || *closed.ForwardedToUpstreamThroughSeq != lastForwarded {
		t.Errorf("close %v: want forwarded_to_upstream_through_seq %d, the last client message forwarded", closed, lastForwarded)
	}
}

// matchJSON reports whether got matches want: "*" matches anything, "$x"
// binds x (or must equal its binding), anything else must be equal.
func matchJSON(want, got any, vars map[string]any) bool {
	switch w := want.(type) {
	case string:
		if w == "*" {
			return true
		}
		if name, ok := strings.CutPrefix(w, "$"); ok {
			if v, bound := vars[name]; bound {
				return reflect.DeepEqual(v, got)
			}
			vars[name] = got
			return true
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !matchJSON(wv, gv, vars) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matchJSON(w[i], g[i], vars) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}
