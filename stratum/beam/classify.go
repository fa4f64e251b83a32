package beam

// Direction says which way a line travelled.
type Direction uint8

// Directions of travel.
const (
	// MinerToNode: sent by the miner (login, solution).
	MinerToNode Direction = iota + 1
	// NodeToMiner: sent by the node (job, cancel, result).
	NodeToMiner
)

// String returns "miner→node" or "node→miner".
func (d Direction) String() string {
	switch d {
	case MinerToNode:
		return "miner→node"
	case NodeToMiner:
		return "node→miner"
	}
	return "unknown direction"
}

// Role is what a message is for, as metering counts it.
type Role uint8

// Roles of messages.
const (
	// RoleRequest: login and solution; each expects a result with its id.
	RoleRequest Role = iota + 1
	// RoleResponse: a result reporting success (CodeLoginOK, CodeAccepted,
	// or any other non-negative code but CodeRejected and CodeExpired).
	RoleResponse
	// RoleNotification: job and cancel, which expect no answer.
	RoleNotification
	// RoleError: a result whose code IsFailure (negative, rejected or
	// expired); it answers a request just as a response does.
	RoleError
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleRequest:
		return "request"
	case RoleResponse:
		return "response"
	case RoleNotification:
		return "notification"
	case RoleError:
		return "error"
	}
	return "unknown role"
}

// Class is what metering needs to know about a line.
type Class struct {
	// Method is the line's method.
	Method Method
	// Role is the message's role.
	Role Role
	// ID correlates messages: "login" (or the login's id) for a login and
	// its result; the job id for job, cancel, solution and the solution's
	// result. A result answers the oldest unanswered request with its ID.
	ID string
	// Code is a result's code; 0 for other methods.
	Code ResultCode
	// Unexpected is set when the method does not travel in the given
	// direction (a miner sending a job or a result, the node sending a
	// login or a solution); the node ignores such messages from a miner.
	Unexpected bool
}

// Classify returns the method, role and correlation id of a line (without
// its LF) sent in direction dir. It checks the JSON, the id and the method
// as Decode does, and decodes only the code of a result; errors are
// *DecodeError.
func Classify(line []byte, dir Direction) (Class, error) {
	var e envelope
	if err := parseEnvelope(line, &e); err != nil {
		return Class{}, err
	}
	c := Class{Method: e.method, ID: e.id}
	fromMiner := false
	switch e.method {
	case MethodLogin, MethodSolution:
		c.Role, fromMiner = RoleRequest, true
	case MethodJob, MethodCancel:
		c.Role = RoleNotification
	case MethodResult:
		code, err := e.code()
		if err != nil {
			return Class{}, err
		}
		c.Code, c.Role = code, RoleResponse
		if code.IsFailure() {
			c.Role = RoleError
		}
	}
	c.Unexpected = fromMiner != (dir == MinerToNode)
	return c, nil
}
