package beam

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Method is a message's "method".
type Method uint8

// Methods of the protocol (pow/stratum.h STRATUM_METHODS).
const (
	// MethodUnknown is the zero Method: no method of the protocol.
	MethodUnknown Method = iota
	// MethodLogin is a miner's login request.
	MethodLogin
	// MethodJob is the node's job notification.
	MethodJob
	// MethodSolution is a miner's solution request.
	MethodSolution
	// MethodResult is the node's answer to a login or a solution.
	MethodResult
	// MethodCancel is the node's notification that a job is void.
	MethodCancel
)

// String returns the method's name on the wire, or "" for MethodUnknown.
func (m Method) String() string {
	switch m {
	case MethodLogin:
		return "login"
	case MethodJob:
		return "job"
	case MethodSolution:
		return "solution"
	case MethodResult:
		return "result"
	case MethodCancel:
		return "cancel"
	}
	return ""
}

// ParseMethod returns the Method named s, or MethodUnknown.
func ParseMethod(s string) Method {
	switch s {
	case "login":
		return MethodLogin
	case "job":
		return MethodJob
	case "solution":
		return MethodSolution
	case "result":
		return MethodResult
	case "cancel":
		return MethodCancel
	}
	return MethodUnknown
}

// Message is one protocol message: *Login, *Solution, *Job, *Cancel or
// *Result.
type Message interface {
	// Method returns the message's method.
	Method() Method
	// Encode validates the message and appends it to dst as the node
	// writes it: compact JSON, keys sorted, "jsonrpc":"2.0", no LF.
	Encode(dst []byte) ([]byte, error)
	// Decode replaces the message with the one in line, which must carry
	// this message's method.
	Decode(line []byte) error
}

// Lengths, in hex digits, of the fixed-size fields.
const (
	NonceHexLen     = 16  // Solution.Nonce: 8 bytes
	OutputHexLen    = 208 // Solution.Output: 104 bytes of Equihash indices
	InputHexLen     = 64  // Job.Input: a 32-byte hash
	BlockHashHexLen = 64  // Result.BlockHash: a 32-byte hash
	// MaxNoncePrefixHexLen bounds Result.NoncePrefix: 6 bytes in the draft
	// API text; the node sends at most 6 digits (3 bytes).
	MaxNoncePrefixHexLen = 12
)

// Login is a miner's login; the node answers with a Result (CodeLoginOK or
// CodeLoginFailed) carrying the same ID, then sends the current Job.
type Login struct {
	// ID is "login" by convention.
	ID string
	// APIKey is the miner's secret key; never record it (see Redact).
	APIKey string
}

// Method returns MethodLogin.
func (*Login) Method() Method { return MethodLogin }

// String formats the login with its API key redacted.
func (m Login) String() string {
	return fmt.Sprintf("Login{ID:%q APIKey:%s}", m.ID, Redacted)
}

// GoString formats the login with its API key redacted.
func (m Login) GoString() string {
	return fmt.Sprintf("beam.Login{ID:%q, APIKey:%q}", m.ID, Redacted)
}

// LogValue logs the login with its API key redacted.
func (m Login) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", m.ID), slog.String("api_key", Redacted))
}

// Encode appends the login as a line without LF.
func (m *Login) Encode(dst []byte) ([]byte, error) {
	if m.ID == "" {
		return dst, errEmptyID
	}
	dst = append(dst, '{')
	dst, err := appendStringMember(dst, "api_key", m.APIKey)
	if err != nil {
		return dst, fmt.Errorf("beam: encode login: api_key: %w", err)
	}
	return finishIDEnvelope(dst, m.ID, MethodLogin)
}

// Solution is a miner's solution to the job named by ID.
type Solution struct {
	// ID is the job's id.
	ID string
	// Nonce is NonceHexLen hex digits, starting with the connection's
	// nonce prefix when the node set one.
	Nonce string
	// Output is the Equihash solution, OutputHexLen hex digits.
	Output string
}

// Method returns MethodSolution.
func (*Solution) Method() Method { return MethodSolution }

func (m *Solution) validate() *DecodeError {
	if r := checkHex(m.Nonce, NonceHexLen); r != "" {
		return invalidField("solution", "nonce", r)
	}
	if r := checkHex(m.Output, OutputHexLen); r != "" {
		return invalidField("solution", "output", r)
	}
	return nil
}

// Encode appends the solution as a line without LF.
func (m *Solution) Encode(dst []byte) ([]byte, error) {
	if m.ID == "" {
		return dst, errEmptyID
	}
	if err := m.validate(); err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	dst, err := appendStringMember(dst, "id", m.ID)
	if err != nil {
		return dst, fmt.Errorf("beam: encode solution: id: %w", err)
	}
	dst = append(dst, ',')
	dst = appendEnvelope(dst, MethodSolution)
	dst = append(dst, `,"nonce":"`...)
	dst = append(dst, m.Nonce...)
	dst = append(dst, `","output":"`...)
	dst = append(dst, m.Output...)
	return append(dst, '"', '}'), nil
}

// Job is the node's work for miners.
type Job struct {
	// ID names the job; solutions and cancels carry it.
	ID string
	// Input is the hash to mine on, InputHexLen hex digits.
	Input string
	// Difficulty is the packed difficulty: order in the top 8 bits,
	// mantissa in the low 24.
	Difficulty uint32
	// Height is the height of the block being mined.
	Height uint64
}

// Method returns MethodJob.
func (*Job) Method() Method { return MethodJob }

func (m *Job) validate() *DecodeError {
	if r := checkHex(m.Input, InputHexLen); r != "" {
		return invalidField("job", "input", r)
	}
	return nil
}

// Encode appends the job as a line without LF.
func (m *Job) Encode(dst []byte) ([]byte, error) {
	if m.ID == "" {
		return dst, errEmptyID
	}
	if err := m.validate(); err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	dst = appendUintMember(dst, "difficulty", uint64(m.Difficulty))
	dst = append(dst, ',')
	dst = appendUintMember(dst, "height", m.Height)
	dst = append(dst, ',')
	dst, err := appendStringMember(dst, "id", m.ID)
	if err != nil {
		return dst, fmt.Errorf("beam: encode job: id: %w", err)
	}
	dst = append(dst, `,"input":"`...)
	dst = append(dst, m.Input...)
	dst = append(dst, '"', ',')
	dst = appendEnvelope(dst, MethodJob)
	return append(dst, '}'), nil
}

// Cancel is the node's notice that the job named by ID is void.
type Cancel struct {
	// ID is the job's id.
	ID string
}

// Method returns MethodCancel.
func (*Cancel) Method() Method { return MethodCancel }

// Encode appends the cancel as a line without LF.
func (m *Cancel) Encode(dst []byte) ([]byte, error) {
	if m.ID == "" {
		return dst, errEmptyID
	}
	dst = append(dst, '{')
	return finishIDEnvelope(dst, m.ID, MethodCancel)
}

// Result is the node's answer to a login or a solution.
type Result struct {
	// ID echoes the request's id: "login" or the job's id.
	ID string
	// Code is the outcome.
	Code ResultCode
	// Description is free text; do not key on it.
	Description string
	// NoncePrefix, on a login result, is the hex prefix every solution
	// nonce on this connection must start with; "" for none. Up to
	// MaxNoncePrefixHexLen digits, of either parity.
	NoncePrefix string
	// BlockHash, on an accepted solution, is the new block's hash
	// (BlockHashHexLen hex digits); "" for none.
	BlockHash string
	// ForkHeight and ForkHeight2, when not nil, are fork heights the node
	// announces.
	ForkHeight, ForkHeight2 *uint64
}

// Method returns MethodResult.
func (*Result) Method() Method { return MethodResult }

func (m *Result) validate() *DecodeError {
	if len(m.NoncePrefix) > MaxNoncePrefixHexLen {
		return invalidField("result", "nonceprefix", "more than "+strconv.Itoa(MaxNoncePrefixHexLen)+" hex digits")
	}
	if !isHex(m.NoncePrefix) {
		return invalidField("result", "nonceprefix", "not hex")
	}
	if m.BlockHash != "" {
		if r := checkHex(m.BlockHash, BlockHashHexLen); r != "" {
			return invalidField("result", "blockhash", r)
		}
	}
	return nil
}

// Encode appends the result as a line without LF; optional fields are
// written only when set, as the node does.
func (m *Result) Encode(dst []byte) ([]byte, error) {
	if m.ID == "" {
		return dst, errEmptyID
	}
	if err := m.validate(); err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	if m.BlockHash != "" {
		dst = append(dst, `"blockhash":"`...)
		dst = append(dst, m.BlockHash...)
		dst = append(dst, '"', ',')
	}
	dst = strconv.AppendInt(appendKey(dst, "code"), int64(m.Code), 10)
	dst = append(dst, ',')
	dst, err := appendStringMember(dst, "description", m.Description)
	if err != nil {
		return dst, fmt.Errorf("beam: encode result: description: %w", err)
	}
	if m.ForkHeight != nil {
		dst = append(dst, ',')
		dst = appendUintMember(dst, "forkheight", *m.ForkHeight)
	}
	if m.ForkHeight2 != nil {
		dst = append(dst, ',')
		dst = appendUintMember(dst, "forkheight2", *m.ForkHeight2)
	}
	dst = append(dst, ',')
	dst, err = appendStringMember(dst, "id", m.ID)
	if err != nil {
		return dst, fmt.Errorf("beam: encode result: id: %w", err)
	}
	dst = append(dst, ',')
	dst = appendEnvelope(dst, MethodResult)
	if m.NoncePrefix != "" {
		dst = append(dst, `,"nonceprefix":"`...)
		dst = append(dst, m.NoncePrefix...)
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// errEmptyID is returned when encoding a message without an id.
var errEmptyID = fmt.Errorf("beam: encode: %w", ErrEmptyID)

// finishIDEnvelope appends `"id":…,"jsonrpc":"2.0","method":…}` after a
// '{' or a member; the separator comma is added when needed.
func finishIDEnvelope(dst []byte, id string, m Method) ([]byte, error) {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst, err := appendStringMember(dst, "id", id)
	if err != nil {
		return dst, fmt.Errorf("beam: encode %s: id: %w", m, err)
	}
	dst = append(dst, ',')
	dst = appendEnvelope(dst, m)
	return append(dst, '}'), nil
}

// Interface guards.
var (
	_ Message = (*Login)(nil)
	_ Message = (*Solution)(nil)
	_ Message = (*Job)(nil)
	_ Message = (*Cancel)(nil)
	_ Message = (*Result)(nil)
)
