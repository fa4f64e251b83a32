package beam

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxMethodInError bounds how much of an unknown method an error quotes.
const maxMethodInError = 64

// envelope is a line whose id and method have been checked, with the spans
// of every protocol key (the last occurrence of a duplicated key wins).
type envelope struct {
	line   []byte
	fields [numFields]span
	method Method
	id     string
}

// parseEnvelope checks the line as the node does: valid UTF-8 JSON, an
// object, a non-empty string id, then a known string method.
func parseEnvelope(line []byte, e *envelope) *DecodeError {
	e.line = line
	if !json.Valid(line) {
		return corrupted("", "", "not valid JSON", syntaxOffset(line))
	}
	if !utf8.Valid(line) {
		return corrupted("", "", "not valid UTF-8", -1)
	}
	it, ok := newMembers(line)
	if !ok {
		return corrupted("", "", "not a JSON object", -1)
	}
	e.fields = [numFields]span{}
	for {
		key, val, ok := it.next()
		if !ok {
			break
		}
		if f := fieldOf(key); f != fOther {
			e.fields[f] = val
		}
	}
	id := e.fields[fID]
	if !id.present() {
		return &DecodeError{Kind: KindEmptyID, Reason: "no id", Offset: -1}
	}
	if line[id.start] != '"' {
		return corrupted("", "id", "not a string", id.start)
	}
	e.id = unquote(line[id.start+1 : id.end-1])
	if e.id == "" {
		return &DecodeError{Kind: KindEmptyID, Offset: int64(id.start)}
	}
	ms := e.fields[fMethod]
	if !ms.present() {
		return &DecodeError{Kind: KindUnknownMethod, Reason: "no method", Offset: -1}
	}
	if line[ms.start] != '"' {
		return corrupted("", "method", "not a string", ms.start)
	}
	raw := line[ms.start+1 : ms.end-1]
	if e.method = ParseMethod(string(raw)); e.method == MethodUnknown {
		if e.method = ParseMethod(unquote(raw)); e.method == MethodUnknown {
			name := unquote(raw)
			if len(name) > maxMethodInError {
				name = name[:maxMethodInError]
			}
			return &DecodeError{Kind: KindUnknownMethod, Method: name, Offset: int64(ms.start)}
		}
	}
	return nil
}

// str returns a string field; absent or not a string is KindCorrupted
// unless optional and absent.
func (e *envelope) str(f field, optional bool) (string, *DecodeError) {
	s := e.fields[f]
	if !s.present() {
		if optional {
			return "", nil
		}
		return "", corrupted(e.method.String(), f.name(), "missing", -1)
	}
	if e.line[s.start] != '"' {
		return "", corrupted(e.method.String(), f.name(), "not a string", s.start)
	}
	return unquote(e.line[s.start+1 : s.end-1]), nil
}

// number returns the literal of a numeric field; absent or not a number is
// KindCorrupted unless optional and absent (then ok is false).
func (e *envelope) number(f field, optional bool) (lit []byte, ok bool, err *DecodeError) {
	s := e.fields[f]
	if !s.present() {
		if optional {
			return nil, false, nil
		}
		return nil, false, corrupted(e.method.String(), f.name(), "missing", -1)
	}
	if c := e.line[s.start]; c != '-' && (c < '0' || c > '9') {
		return nil, false, corrupted(e.method.String(), f.name(), "not a number", s.start)
	}
	return e.line[s.start:s.end], true, nil
}

// uint returns an unsigned integer field of the given bit size.
func (e *envelope) uint(f field, bits int, optional bool) (uint64, bool, *DecodeError) {
	lit, ok, err := e.number(f, optional)
	if !ok {
		return 0, false, err
	}
	v, okNum := parseUint(lit, bits)
	if !okNum {
		return 0, false, invalidField(e.method.String(), f.name(), "not an unsigned "+strconv.Itoa(bits)+"-bit integer")
	}
	return v, true, nil
}

// Decode decodes one line (without its LF) into a *Login, *Solution, *Job,
// *Cancel or *Result, whatever the direction it travelled. Errors are
// *DecodeError.
func Decode(line []byte) (Message, error) {
	var e envelope
	if err := parseEnvelope(line, &e); err != nil {
		return nil, err
	}
	var (
		m   Message
		err *DecodeError
	)
	switch e.method {
	case MethodLogin:
		l := new(Login)
		m, err = l, l.from(&e)
	case MethodSolution:
		s := new(Solution)
		m, err = s, s.from(&e)
	case MethodJob:
		j := new(Job)
		m, err = j, j.from(&e)
	case MethodCancel:
		c := new(Cancel)
		m, err = c, c.from(&e)
	default:
		r := new(Result)
		m, err = r, r.from(&e)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// decodeAs decodes line into m, which must have the line's method.
func decodeAs(line []byte, want Method, from func(*envelope) *DecodeError) error {
	var e envelope
	if err := parseEnvelope(line, &e); err != nil {
		return err
	}
	if e.method != want {
		return &DecodeError{Kind: KindUnknownMethod, Method: e.method.String(),
			Reason: "want method " + want.String(), Offset: int64(e.fields[fMethod].start)}
	}
	if err := from(&e); err != nil {
		return err
	}
	return nil
}

// Decode replaces m with the login in line; errors are *DecodeError.
func (m *Login) Decode(line []byte) error { return decodeAs(line, MethodLogin, m.from) }

func (m *Login) from(e *envelope) *DecodeError {
	key, err := e.str(fAPIKey, false)
	if err != nil {
		return err
	}
	*m = Login{ID: e.id, APIKey: key}
	return nil
}

// Decode replaces m with the solution in line; errors are *DecodeError.
func (m *Solution) Decode(line []byte) error { return decodeAs(line, MethodSolution, m.from) }

func (m *Solution) from(e *envelope) *DecodeError {
	nonce, err := e.str(fNonce, false)
	if err != nil {
		return err
	}
	output, err := e.str(fOutput, false)
	if err != nil {
		return err
	}
	s := Solution{ID: e.id, Nonce: nonce, Output: output}
	if err := s.validate(); err != nil {
		return err
	}
	*m = s
	return nil
}

// Decode replaces m with the job in line; errors are *DecodeError.
func (m *Job) Decode(line []byte) error { return decodeAs(line, MethodJob, m.from) }

func (m *Job) from(e *envelope) *DecodeError {
	input, err := e.str(fInput, false)
	if err != nil {
		return err
	}
	diff, _, err := e.uint(fDifficulty, 32, false)
	if err != nil {
		return err
	}
	height, _, err := e.uint(fHeight, 64, false)
	if err != nil {
		return err
	}
	j := Job{ID: e.id, Input: input, Difficulty: uint32(diff), Height: height}
	if err := j.validate(); err != nil {
		return err
	}
	*m = j
	return nil
}

// Decode replaces m with the cancel in line; errors are *DecodeError.
func (m *Cancel) Decode(line []byte) error { return decodeAs(line, MethodCancel, m.from) }

func (m *Cancel) from(e *envelope) *DecodeError {
	*m = Cancel{ID: e.id}
	return nil
}

// Decode replaces m with the result in line; errors are *DecodeError.
func (m *Result) Decode(line []byte) error { return decodeAs(line, MethodResult, m.from) }

func (m *Result) from(e *envelope) *DecodeError {
	code, err := e.code()
	if err != nil {
		return err
	}
	r := Result{ID: e.id, Code: code}
	if r.Description, err = e.str(fDescription, false); err != nil {
		return err
	}
	if r.NoncePrefix, err = e.str(fNoncePrefix, true); err != nil {
		return err
	}
	if r.BlockHash, err = e.str(fBlockHash, true); err != nil {
		return err
	}
	for _, f := range [...]struct {
		f   field
		dst **uint64
	}{{fForkHeight, &r.ForkHeight}, {fForkHeight2, &r.ForkHeight2}} {
		v, ok, err := e.uint(f.f, 64, true)
		if err != nil {
			return err
		}
		if ok {
			*f.dst = &v
		}
	}
	if err := r.validate(); err != nil {
		return err
	}
	*m = r
	return nil
}

// code returns a result's code, a 32-bit signed integer.
func (e *envelope) code() (ResultCode, *DecodeError) {
	lit, _, err := e.number(fCode, false)
	if err != nil {
		return 0, err
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	v, ok := parseUint(lit, 32)
	if !ok || !neg && v > math.MaxInt32 || neg && v > -math.MinInt32 {
		return 0, invalidField(e.method.String(), "code", "not a 32-bit integer")
	}
	if neg {
		return ResultCode(-int64(v)), nil
	}
	return ResultCode(v), nil
}

// parseUint parses a JSON integer literal of decimal digits (no sign,
// fraction or exponent) that fits in bits.
func parseUint(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if bits < 64 && v>>uint(bits) != 0 {
		return 0, false
	}
	return v, true
}
