package sv2

import (
	"fmt"
	"sort"
)

// Extension types that own messages in this package.
const (
	// ExtCore is the extension_type of the core protocols (Common, Mining,
	// Job Declaration, Template Distribution).
	ExtCore uint16 = 0x0000
	// ExtExtensionsNegotiation is extension 0x0001, which defines
	// RequestExtensions and its answers.
	ExtExtensionsNegotiation uint16 = 0x0001
	// ExtWorkerHashrateTracking is extension 0x0002, which appends a
	// user_identity TLV (field type TLVFieldUserIdentity) to
	// SubmitSharesExtended.
	ExtWorkerHashrateTracking uint16 = 0x0002
	// TLVFieldUserIdentity is the TLV field type of extension 0x0002's
	// user_identity, at most 32 bytes of UTF-8.
	TLVFieldUserIdentity uint8 = 0x01
)

// Protocol names the (sub)protocol a message belongs to.
type Protocol string

// Protocols of the registered messages.
const (
	ProtocolCommon                Protocol = "common"
	ProtocolMining                Protocol = "mining"
	ProtocolJobDeclaration        Protocol = "job_declaration"
	ProtocolTemplateDistribution  Protocol = "template_distribution"
	ProtocolExtensionsNegotiation Protocol = "extensions_negotiation"
	ProtocolUnknown               Protocol = "unknown"
)

// Direction is the set of directions a message may travel in.
type Direction uint8

// Directions, as a bit set: BothDirections = ClientToServer|ServerToClient.
const (
	ClientToServer Direction = 1 << iota // downstream (client) to upstream (server)
	ServerToClient                       // upstream (server) to downstream (client)
	BothDirections = ClientToServer | ServerToClient
)

// String returns "client_to_server", "server_to_client" or "both".
func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client_to_server"
	case ServerToClient:
		return "server_to_client"
	case BothDirections:
		return "both"
	}
	return "unknown"
}

// Role is the part a message plays in pairing requests with answers.
type Role uint8

// Roles. RoleError marks the *.Error messages; RoleOther marks frames the
// registry does not know.
const (
	RoleOther Role = iota
	RoleRequest
	RoleResponse
	RoleNotification
	RoleError
)

// String returns the role in lower case, e.g. "request".
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
	return "other"
}

// MessageInfo describes one registered message type.
type MessageInfo struct {
	Kind       Kind
	Name       string // name in the specification, e.g. "SubmitShares.Success"
	Protocol   Protocol
	ChannelMsg bool // whether frames of this type set the channel_msg bit
	Direction  Direction
	Role       Role
	// New returns a new, empty message of this type.
	New func() Message
	// keys says where Classify finds the correlation keys.
	keys []keyOp
}

// registry maps each known Kind to its description. It is filled by the
// init functions of the message family files and read-only afterwards.
var registry = map[Kind]*MessageInfo{}

// register adds info to the registry; it panics on a duplicate or an
// incomplete entry, which is a programming error.
func register(info MessageInfo) {
	if info.Name == "" || info.New == nil {
		panic(fmt.Sprintf("sv2: incomplete registration for %v", info.Kind))
	}
	if _, dup := registry[info.Kind]; dup {
		panic(fmt.Sprintf("sv2: duplicate registration for %v", info.Kind))
	}
	if got := info.New().Kind(); got != info.Kind {
		panic(fmt.Sprintf("sv2: %s constructor returns kind %v, registered as %v", info.Name, got, info.Kind))
	}
	registry[info.Kind] = &info
}

// Lookup returns the description of a message type; the channel_msg bit
// must already be cleared from k.Ext (Header.Kind does so).
func Lookup(k Kind) (MessageInfo, bool) {
	if info, ok := registry[k]; ok {
		return *info, true
	}
	return MessageInfo{}, false
}

// Messages returns every registered message type, ordered by extension
// type then msg_type.
func Messages() []MessageInfo {
	out := make([]MessageInfo, 0, len(registry))
	for _, info := range registry {
		out = append(out, *info)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Kind, out[j].Kind
		if a.Ext != b.Ext {
			return a.Ext < b.Ext
		}
		return a.Type < b.Type
	})
	return out
}
