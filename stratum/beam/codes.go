package beam

import "strconv"

// ResultCode is the "code" of a result message.
type ResultCode int32

// Result codes the node sends (pow/stratum.h STRATUM_RESULTS).
const (
	// CodeLoginOK answers a successful login (the node's "no_error").
	CodeLoginOK ResultCode = 0
	// CodeAccepted answers a solution that produced a block.
	CodeAccepted ResultCode = 1
	// CodeRejected answers an invalid solution, or one whose nonce lacks
	// the connection's nonce prefix (the node then closes the connection).
	CodeRejected ResultCode = 2
	// CodeExpired answers a solution to a job that is no longer current.
	CodeExpired ResultCode = 3
	// CodeMessageCorrupted means the message could not be parsed.
	CodeMessageCorrupted ResultCode = -32000
	// CodeUnknownMethod means the method is not one of the protocol's.
	CodeUnknownMethod ResultCode = -32001
	// CodeEmptyID means the message had an empty id.
	CodeEmptyID ResultCode = -32002
	// CodeLoginFailed answers a login with an unknown api_key; the node
	// closes the connection after sending it.
	CodeLoginFailed ResultCode = -32003
)

// String returns the code's name, or its number for codes the protocol
// does not define.
func (c ResultCode) String() string {
	switch c {
	case CodeLoginOK:
		return "login_ok"
	case CodeAccepted:
		return "accepted"
	case CodeRejected:
		return "rejected"
	case CodeExpired:
		return "expired"
	case CodeMessageCorrupted:
		return "message_corrupted"
	case CodeUnknownMethod:
		return "unknown_method"
	case CodeEmptyID:
		return "empty_id"
	case CodeLoginFailed:
		return "login_failed"
	}
	return strconv.Itoa(int(c))
}

// Description returns the description the node sends with the code
// (get_result_msg); peers must not key on it, it varies between versions.
func (c ResultCode) Description() string {
	switch c {
	case CodeLoginOK:
		return "Success"
	case CodeAccepted:
		return "accepted"
	case CodeRejected:
		return "rejected"
	case CodeExpired:
		return "expired"
	case CodeMessageCorrupted:
		return "Message corrupted"
	case CodeUnknownMethod:
		return "Unknown method"
	case CodeEmptyID:
		return "ID is empty"
	case CodeLoginFailed:
		return "Login failed"
	}
	return "unknown"
}

// IsFailure reports whether the code reports a failure: a negative code, a
// rejected or an expired solution. Metering counts such results as errors.
func (c ResultCode) IsFailure() bool {
	return c < 0 || c == CodeRejected || c == CodeExpired
}
