package policy_test

import (
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

func sv2Msg(t testing.TB, d event.Direction, method string, m sv2.Message) *event.Message {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &event.Message{Direction: d, Method: method, Binary: true, Payload: b, PayloadSize: uint64(len(b)), WireSize: uint64(len(b)) + 6}
}

func TestSv2Shares(t *testing.T) {
	ok := &sv2.SubmitSharesSuccess{ChannelID: 1, LastSequenceNumber: 9, NewSubmitsAcceptedCount: 3, NewSharesSum: 4096}
	okMsg := sv2Msg(t, down, "SubmitShares.Success", ok)
	for _, tc := range []struct {
		name, params string
		msg          *event.Message
		want         uint64
	}{
		{"count by default", ``, okMsg, 3},
		{"count", `{"by": "count"}`, okMsg, 3},
		{"sum", `{"by": "sum"}`, okMsg, 4096},
		{"max sum", `{"by": "sum"}`, sv2Msg(t, down, "SubmitShares.Success", &sv2.SubmitSharesSuccess{NewSharesSum: 1<<64 - 1}), 1<<64 - 1},
		{"submit is 0", `{"by": "sum"}`, sv2Msg(t, up, "SubmitSharesStandard", &sv2.SubmitSharesStandard{ChannelID: 1}), 0},
		{"error is 0", `{}`, sv2Msg(t, down, "SubmitShares.Error", &sv2.SubmitSharesError{ChannelID: 1, ErrorCode: "stale-share"}), 0},
		{"wrong direction is 0", `{}`, &event.Message{Direction: up, Method: "SubmitShares.Success", Payload: okMsg.Payload, PayloadSize: okMsg.PayloadSize}, 0},
		{"empty other message", `{}`, &event.Message{Direction: down, Method: "NewMiningJob"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, state := units(t, mustNew(t, "sv2-shares", tc.params), tc.msg)
			if got[0] != tc.want || state != nil {
				t.Fatalf("units = %d state %x, want %d", got[0], state, tc.want)
			}
		})
	}
	p := mustNew(t, "sv2-shares", `{}`)
	for name, m := range map[string]*event.Message{
		"short":            {Direction: down, Method: "SubmitShares.Success", Payload: okMsg.Payload[:19], PayloadSize: 19},
		"trailing bytes":   {Direction: down, Method: "SubmitShares.Success", Payload: append(append([]byte(nil), okMsg.Payload...), 0), PayloadSize: 21},
		"truncated":        {Direction: down, Method: "SubmitShares.Success", Payload: okMsg.Payload[:8], PayloadSize: 20},
		"not captured":     {Direction: down, Method: "SubmitShares.Success", PayloadSize: 20},
		"empty everything": {Direction: down, Method: "SubmitShares.Success"},
	} {
		if u, _, err := p.Units(nil, nil, m); err == nil || u != 0 {
			t.Errorf("%s: units %d err %v, want an error", name, u, err)
		}
	}
}

func beamLine(d event.Direction, method, line string) *event.Message {
	return &event.Message{Direction: d, Method: method, Payload: []byte(line), PayloadSize: uint64(len(line))}
}

const (
	hex16  = "0123456789abcdef"
	hex208 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
)

func solution(id string) *event.Message {
	return beamLine(up, "solution", `{"id":"`+id+`","jsonrpc":"2.0","method":"solution","nonce":"`+hex16+`","output":"`+hex208+`"}`)
}

func result(id, code string) *event.Message {
	return beamLine(down, "result", `{"code":`+code+`,"description":"","id":"`+id+`","method":"result"}`)
}

func TestBeamSolutions(t *testing.T) {
	login := beamLine(up, "login", `{"api_key":"k","id":"login","method":"login"}`)
	loginOK := result("login", "0")
	job := beamLine(down, "job", `{"difficulty":1,"height":5,"id":"7","input":"`+hex16+hex16+hex16+hex16+`","method":"job"}`)
	for _, tc := range []struct {
		name string
		msgs []*event.Message
		want []uint64
	}{
		{"accepted", []*event.Message{login, loginOK, job, solution("7"), result("7", "1")}, []uint64{0, 0, 0, 0, 1}},
		{"rejected and expired", []*event.Message{solution("7"), result("7", "2"), solution("7"), result("7", "3")}, []uint64{0, 0, 0, 0}},
		{"result without solution", []*event.Message{result("7", "1")}, []uint64{0}},
		{"login result code 1 is no solution", []*event.Message{login, result("login", "1")}, []uint64{0, 0}},
		{"two solutions one job", []*event.Message{solution("7"), solution("7"), result("7", "1"), result("7", "1"), result("7", "1")}, []uint64{0, 0, 1, 1, 0}},
		{"pipelined", []*event.Message{solution("7"), solution("8"), result("8", "1"), result("7", "2")}, []uint64{0, 0, 1, 0}},
		{"trailing LF", []*event.Message{solution("7"), beamLine(down, "result", `{"code":1,"description":"","id":"7","method":"result"}`+"\n")}, []uint64{0, 1}},
		{"edge names no method", []*event.Message{solution("7"), beamLine(down, "", `{"code":1,"description":"","id":"7","method":"result"}`)}, []uint64{0, 1}},
		{"other messages not parsed", []*event.Message{{Direction: down, Method: "job"}, {Direction: down, Method: "cancel"}}, []uint64{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, state := units(t, mustNew(t, "beam-solutions", ``), tc.msgs...)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("units = %v, want %v", got, tc.want)
				}
			}
			if state != nil { // every case answers or never awaited its solutions
				t.Fatalf("carry %x left, want none", state)
			}
		})
	}
}

func TestBeamSolutionsBounded(t *testing.T) {
	p := mustNew(t, "beam-solutions", ``)
	var state []byte
	for i := range 10 * policy.BeamMaxInFlight {
		_, next, err := p.Units(nil, state, solution(strings.Repeat("9", policy.BeamMaxID-3)+string(rune('a'+i%26))+"00"))
		if err != nil {
			t.Fatal(err)
		}
		if len(next) > policy.BeamMaxInFlight*(policy.BeamMaxID+1) {
			t.Fatalf("carry of %d bytes after %d solutions", len(next), i+1)
		}
		state = append(state[:0], next...)
	}
	if _, _, err := p.Units(nil, nil, solution(strings.Repeat("1", policy.BeamMaxID+1))); err == nil {
		t.Fatal("an oversized id was awaited")
	}
	for name, m := range map[string]*event.Message{
		"not json":     beamLine(down, "result", `{"code":1,`),
		"code string":  beamLine(down, "result", `{"code":"1","description":"","id":"7","method":"result"}`),
		"truncated":    {Direction: down, Method: "result", Payload: []byte(`{"code":1`), PayloadSize: 60},
		"not captured": {Direction: down, Method: "result", PayloadSize: 60},
	} {
		if u, _, err := p.Units(nil, nil, m); err == nil || u != 0 {
			t.Errorf("%s: units %d err %v, want an error", name, u, err)
		}
	}
	if _, _, err := p.Units(nil, []byte{200}, result("7", "1")); err == nil {
		t.Error("a corrupt carry was read")
	}
}
