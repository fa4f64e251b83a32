package policy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// DelimiterName is the name of the delimiter policy.
const DelimiterName = "delimiter"

// DelimiterVersion is the current version of the delimiter policy.
const DelimiterVersion = 1

// MaxDelimiter is the longest delimiter the delimiter policy accepts, in
// bytes; it bounds the carry to 2*(MaxDelimiter-1)+2*binary.MaxVarintLen64
// bytes whatever the stream.
const MaxDelimiter = 64

func init() {
	Register(Definition{Name: DelimiterName, Version: DelimiterVersion, New: newDelimiter, Payload: true})
}

// DelimiterParams are the delimiter policy's parameters. Delimiter and
// DelimiterHex are exclusive; with neither, the delimiter is "\n".
type DelimiterParams struct {
	// Delimiter is the delimiter as a literal JSON string, its UTF-8
	// bytes: "\n", "\r\n", "\u0000".
	Delimiter *string `json:"delimiter"`
	// DelimiterHex is the delimiter as hex digits, for bytes a JSON string
	// cannot spell as themselves: "0d0a", "ff00".
	DelimiterHex *string `json:"delimiter_hex"`
	// Direction is the messages priced: "both" (the default), "request"
	// or "response". Each direction is a byte stream of its own: a record
	// never spans the two.
	Direction Direction `json:"direction"`

	delim []byte
}

// Validate decodes the delimiter and checks its length and the direction.
func (p *DelimiterParams) Validate() error {
	switch {
	case p.Delimiter != nil && p.DelimiterHex != nil:
		return errors.New("delimiter and delimiter_hex are exclusive: give one")
	case p.DelimiterHex != nil:
		b, err := hex.DecodeString(*p.DelimiterHex)
		if err != nil {
			return fmt.Errorf("delimiter_hex %q: %w", *p.DelimiterHex, err)
		}
		p.delim = b
	case p.Delimiter != nil:
		p.delim = []byte(*p.Delimiter)
	default:
		p.delim = []byte{'\n'}
	}
	if len(p.delim) == 0 || len(p.delim) > MaxDelimiter {
		return fmt.Errorf("delimiter of %d bytes: want 1 to %d", len(p.delim), MaxDelimiter)
	}
	return p.Direction.Validate()
}

// Delimiter is the delimiter policy: one unit per record its delimiter
// ends, in each direction's byte stream. A partial record is carried to
// the stream's next message of its direction, as its length and at most
// the last len(delimiter)-1 of its bytes (what a delimiter split across
// messages needs), never the record itself.
//
// It needs whole payloads: a message whose captured payload is shorter
// than its payload (payload_capture positive, or 0) is an error.
type Delimiter struct {
	delim     []byte
	direction Direction
}

func newDelimiter(raw json.RawMessage) (Policy, error) {
	var p DelimiterParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: DelimiterName, Err: err}
	}
	return Delimiter{delim: p.delim, direction: p.Direction}, nil
}

// Name returns "delimiter".
func (Delimiter) Name() string { return DelimiterName }

// Version returns DelimiterVersion.
func (Delimiter) Version() int { return DelimiterVersion }

// carry is one direction's unfinished record: its length and its last
// bytes, at most len(delimiter)-1 of them.
type carry struct {
	partial uint64
	tail    []byte
}

// decodeCarry reads the two directions' carries (request first) from
// state; nil state is two empty carries.
func (d Delimiter) decodeCarry(state []byte) (c [2]carry, err error) {
	if len(state) == 0 {
		return c, nil
	}
	rest := state
	for i := range c {
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return c, errors.New("carry state: bad partial length")
		}
		rest = rest[k:]
		t, k := binary.Uvarint(rest)
		if k <= 0 || t > uint64(len(rest)-k) || t >= uint64(len(d.delim)) || t > n {
			return c, errors.New("carry state: bad tail length")
		}
		rest = rest[k:]
		c[i] = carry{partial: n, tail: rest[:t]}
		rest = rest[t:]
	}
	if len(rest) != 0 {
		return c, errors.New("carry state: trailing bytes")
	}
	return c, nil
}

func encodeCarry(c [2]carry) []byte {
	if c[0].partial == 0 && c[1].partial == 0 {
		return nil
	}
	out := make([]byte, 0, 4*binary.MaxVarintLen64+len(c[0].tail)+len(c[1].tail))
	for _, x := range c {
		out = binary.AppendUvarint(out, x.partial)
		out = binary.AppendUvarint(out, uint64(len(x.tail)))
		out = append(out, x.tail...)
	}
	return out
}

// Units counts the delimiters that m's payload, after the carried partial
// record of its direction, holds, finding a delimiter split across
// messages.
func (d Delimiter) Units(_ *Stream, state []byte, m *event.Message) (uint64, []byte, error) {
	if !d.direction.Selects(m.Direction) {
		return 0, state, nil
	}
	if uint64(len(m.Payload)) < m.PayloadSize {
		return 0, nil, fmt.Errorf("payload captured partially (%d of %d bytes): the delimiter policy needs whole payloads (payload_capture -1)", len(m.Payload), m.PayloadSize)
	}
	c, err := d.decodeCarry(state)
	if err != nil {
		return 0, nil, err
	}
	i := 0
	if m.Direction == event.Direction_UPSTREAM_TO_CLIENT {
		i = 1
	}
	units, next := d.scan(c[i], m.Payload)
	c[i] = next
	return units, encodeCarry(c), nil
}

// scan counts the delimiters of c's record continued by p, non-overlapping
// and left to right, and returns the carry after p. The returned tail
// aliases p or c.tail; encodeCarry copies it.
func (d Delimiter) scan(c carry, p []byte) (uint64, carry) {
	k := len(d.delim) - 1
	var units uint64
	pos := 0 // where the scan of p resumes
	found := false
	if len(c.tail) > 0 && len(p) > 0 {
		// A delimiter that starts in the tail ends within p's first k bytes.
		var buf [2 * MaxDelimiter]byte
		joined := append(append(buf[:0], c.tail...), p[:min(k, len(p))]...)
		if j := bytes.Index(joined, d.delim); j >= 0 && j < len(c.tail) {
			units++
			pos = j + len(d.delim) - len(c.tail)
			found = true
		}
	}
	for {
		j := bytes.Index(p[pos:], d.delim)
		if j < 0 {
			break
		}
		units++
		pos += j + len(d.delim)
		found = true
	}
	if found {
		rest := p[pos:]
		return units, carry{partial: uint64(len(rest)), tail: rest[max(0, len(rest)-k):]}
	}
	// No delimiter: the record goes on; its tail is the last k bytes of
	// tail+p.
	next := carry{partial: c.partial + uint64(len(p))}
	if len(p) >= k {
		next.tail = p[len(p)-k:]
	} else {
		keep := min(len(c.tail), k-len(p))
		t := make([]byte, 0, keep+len(p))
		t = append(append(t, c.tail[len(c.tail)-keep:]...), p...)
		next.tail = t
	}
	return units, next
}

// Remainder describes the partial records carried at close: "N bytes
// after the last delimiter", "" when none.
func (d Delimiter) Remainder(state []byte) string {
	c, err := d.decodeCarry(state)
	if err != nil {
		return fmt.Sprintf("unreadable carry of %d bytes: %v", len(state), err)
	}
	n := c[0].partial + c[1].partial
	switch {
	case n == 0:
		return ""
	case c[0].partial != 0 && c[1].partial != 0:
		return fmt.Sprintf("%d bytes after the last delimiter (%d request, %d response)", n, c[0].partial, c[1].partial)
	}
	return fmt.Sprintf("%d bytes after the last delimiter", n)
}

var (
	_ Policy   = Delimiter{}
	_ Finisher = Delimiter{}
)

// Delim returns a copy of the delimiter.
func (d Delimiter) Delim() []byte { return append([]byte(nil), d.delim...) }
