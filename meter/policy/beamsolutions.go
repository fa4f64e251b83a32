package policy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/stratum/beam"
)

// BeamSolutionsName is the name of the beam-solutions policy.
const BeamSolutionsName = "beam-solutions"

// BeamSolutionsVersion is the current version of the beam-solutions policy.
const BeamSolutionsVersion = 1

// Bounds of the beam-solutions carry: at most BeamMaxInFlight solutions
// awaiting their result, each id at most BeamMaxID bytes, so the carry
// never exceeds about BeamMaxInFlight*(BeamMaxID+1) bytes.
const (
	BeamMaxInFlight = 64
	BeamMaxID       = 64
)

func init() {
	Register(Definition{Name: BeamSolutionsName, Version: BeamSolutionsVersion, New: newBeamSolutions, Payload: true})
}

// BeamSolutionsParams are the beam-solutions policy's parameters: it has
// none.
type BeamSolutionsParams struct{}

// BeamSolutions is the beam-solutions policy for Beam streams: one unit per
// result with code 1 (accepted) that answers a solution of the stream;
// every other message is 0 units.
//
// The ids of the solutions awaiting a result are carried across messages,
// oldest first, one entry per solution (miners send several solutions for
// one job id). When BeamMaxInFlight are awaiting, the oldest is forgotten:
// its result, if it ever comes, is 0 units. A solution whose id is longer
// than BeamMaxID is an error and is not awaited. It needs payloads
// captured whole.
type BeamSolutions struct{}

func newBeamSolutions(raw json.RawMessage) (Policy, error) {
	var p BeamSolutionsParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: BeamSolutionsName, Err: err}
	}
	return BeamSolutions{}, nil
}

// Name returns "beam-solutions".
func (BeamSolutions) Name() string { return BeamSolutionsName }

// Version returns BeamSolutionsVersion.
func (BeamSolutions) Version() int { return BeamSolutionsVersion }

// Units returns 1 for an accepted result answering an awaited solution, 0
// for anything else, and the carry of awaited solution ids.
func (BeamSolutions) Units(_ *Stream, state []byte, m *event.Message) (uint64, []byte, error) {
	// The edge names the method; only solutions and results matter, and
	// only those are parsed. A message it could not name is parsed too.
	if m.Method != "" && m.Method != "solution" && m.Method != "result" {
		return 0, state, nil
	}
	if uint64(len(m.Payload)) < m.PayloadSize || len(m.Payload) == 0 {
		return 0, nil, fmt.Errorf("payload captured partially (%d of %d bytes): beam-solutions needs whole payloads", len(m.Payload), m.PayloadSize)
	}
	dir := beam.MinerToNode
	if m.Direction == event.Direction_UPSTREAM_TO_CLIENT {
		dir = beam.NodeToMiner
	}
	line := bytes.TrimSuffix(bytes.TrimSuffix(m.Payload, []byte{'\n'}), []byte{'\r'})
	c, err := beam.Classify(line, dir)
	if err != nil {
		return 0, nil, fmt.Errorf("beam %s: %w", m.Method, err)
	}
	if c.Unexpected {
		return 0, state, nil
	}
	ids, err := beamIDs(state)
	if err != nil {
		return 0, nil, err
	}
	switch c.Method {
	case beam.MethodSolution:
		if len(c.ID) > BeamMaxID {
			return 0, nil, fmt.Errorf("beam solution: id of %d bytes, more than %d", len(c.ID), BeamMaxID)
		}
		if len(ids) == BeamMaxInFlight {
			ids = ids[1:]
		}
		return 0, encodeBeamIDs(append(ids, c.ID)), nil
	case beam.MethodResult:
		for i, id := range ids {
			if id == c.ID {
				ids = append(ids[:i:i], ids[i+1:]...)
				var u uint64
				if c.Code == beam.CodeAccepted {
					u = 1
				}
				return u, encodeBeamIDs(ids), nil
			}
		}
	}
	return 0, state, nil
}

// beamIDs reads the carried ids: each a uvarint length and its bytes.
func beamIDs(state []byte) ([]string, error) {
	var ids []string
	for rest := state; len(rest) > 0; {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > BeamMaxID || n > uint64(len(rest)-k) {
			return nil, errors.New("beam-solutions carry state: bad id length")
		}
		ids = append(ids, string(rest[k:k+int(n)]))
		rest = rest[k+int(n):]
		if len(ids) > BeamMaxInFlight {
			return nil, errors.New("beam-solutions carry state: too many ids")
		}
	}
	return ids, nil
}

func encodeBeamIDs(ids []string) []byte {
	if len(ids) == 0 {
		return nil
	}
	var out []byte
	for _, id := range ids {
		out = binary.AppendUvarint(out, uint64(len(id)))
		out = append(out, id...)
	}
	return out
}

var _ Policy = BeamSolutions{}
