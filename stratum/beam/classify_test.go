package beam

import (
	"errors"
	"strings"
	"testing"
)

// TestClassifyTranscript classifies a recorded session ("-->" miner to
// node, "<--" node to miner) and checks that every result pairs with an
// earlier request of the same id.
func TestClassifyTranscript(t *testing.T) {
	type want struct {
		m    Method
		role Role
		id   string
		code ResultCode
	}
	wants := []want{
		{MethodLogin, RoleRequest, "login", 0},
		{MethodResult, RoleResponse, "login", CodeLoginOK},
		{MethodJob, RoleNotification, "1376020", 0},
		{MethodSolution, RoleRequest, "1376020", 0},
		{MethodResult, RoleResponse, "1376020", CodeAccepted},
		{MethodJob, RoleNotification, "1376021", 0},
		{MethodSolution, RoleRequest, "1376020", 0},
		{MethodResult, RoleError, "1376020", CodeExpired},
		{MethodCancel, RoleNotification, "1376020", 0},
	}
	var got []want
	pending := map[string]int{}
	for _, l := range fixtureLines(t, "session.txt") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		dir := MinerToNode
		if strings.HasPrefix(l, "<-- ") {
			dir = NodeToMiner
		}
		c, err := Classify([]byte(l[4:]), dir)
		if err != nil {
			t.Fatalf("Classify(%s): %v", l, err)
		}
		if c.Unexpected {
			t.Errorf("%s flagged unexpected in direction %v", l[:20], dir)
		}
		switch c.Role {
		case RoleRequest:
			pending[c.ID]++
		case RoleResponse, RoleError:
			if pending[c.ID] == 0 {
				t.Errorf("result for %q answers no request", c.ID)
			}
			pending[c.ID]--
		}
		got = append(got, want{c.Method, c.Role, c.ID, c.Code})
	}
	if len(got) != len(wants) {
		t.Fatalf("classified %d lines, want %d", len(got), len(wants))
	}
	for i := range wants {
		if got[i] != wants[i] {
			t.Errorf("line %d: got %+v, want %+v", i+1, got[i], wants[i])
		}
	}
}

func TestClassifyRoles(t *testing.T) {
	res := func(code string) string {
		return `{"code":` + code + `,"description":"","id":"7","method":"result"}`
	}
	tests := []struct {
		line       string
		dir        Direction
		role       Role
		unexpected bool
	}{
		{res("0"), NodeToMiner, RoleResponse, false},
		{res("1"), NodeToMiner, RoleResponse, false},
		{res("4"), NodeToMiner, RoleResponse, false},
		{res("2"), NodeToMiner, RoleError, false},
		{res("3"), NodeToMiner, RoleError, false},
		{res("-32003"), NodeToMiner, RoleError, false},
		{res("-1"), NodeToMiner, RoleError, false},
		{res("1"), MinerToNode, RoleResponse, true},
		{`{"id":"login","method":"login","api_key":"k"}`, NodeToMiner, RoleRequest, true},
		{`{"id":"7","method":"cancel"}`, MinerToNode, RoleNotification, true},
		// Classify does not validate fields it does not need.
		{`{"id":"7","method":"solution","nonce":1}`, MinerToNode, RoleRequest, false},
	}
	for _, tt := range tests {
		c, err := Classify([]byte(tt.line), tt.dir)
		if err != nil {
			t.Errorf("Classify(%s): %v", tt.line, err)
			continue
		}
		if c.Role != tt.role || c.Unexpected != tt.unexpected || c.ID != "7" && c.ID != "login" {
			t.Errorf("Classify(%s, %v) = %+v, want role %v unexpected %v", tt.line, tt.dir, c, tt.role, tt.unexpected)
		}
	}
}

func TestClassifyErrors(t *testing.T) {
	tests := []struct {
		line string
		want error
	}{
		{`not json`, ErrCorrupted},
		{`{"id":"","method":"job"}`, ErrEmptyID},
		{`{"id":"1","method":"mining.subscribe"}`, ErrUnknownMethod},
		{`{"id":"1","method":"result","code":"1","description":""}`, ErrCorrupted},
	}
	for _, tt := range tests {
		c, err := Classify([]byte(tt.line), NodeToMiner)
		if !errors.Is(err, tt.want) || c != (Class{}) {
			t.Errorf("Classify(%s) = %+v, %v; want %v", tt.line, c, err, tt.want)
		}
	}
	_, err := Classify([]byte(`{"id":"1","method":"mining.subscribe"}`), MinerToNode)
	var de *DecodeError
	if !errors.As(err, &de) || de.Method != "mining.subscribe" {
		t.Errorf("unknown method error %v does not carry the method name", err)
	}
}

func TestClassifyAllocations(t *testing.T) {
	line := []byte(`{"id":"1376020","jsonrpc":"2.0","method":"solution","nonce":"` + hex16 + `","output":"` + hex208 + `"}`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Classify(line, MinerToNode); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("Classify allocates %.0f times per line, want at most 1 (the id)", allocs)
	}
}

func TestNamesOfEnums(t *testing.T) {
	if MinerToNode.String() != "miner→node" || NodeToMiner.String() != "node→miner" {
		t.Error("direction names")
	}
	for r, n := range map[Role]string{RoleRequest: "request", RoleResponse: "response",
		RoleNotification: "notification", RoleError: "error"} {
		if r.String() != n {
			t.Errorf("Role(%d).String() = %q", r, r.String())
		}
	}
}
