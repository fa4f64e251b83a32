package sv2

// Extensions negotiation messages (extension 0x0001, sent with extension_type 0x0001).

const (
	// MsgRequestExtensions is the msg_type of RequestExtensions.
	MsgRequestExtensions uint8 = 0x00
	// MsgRequestExtensionsSuccess is the msg_type of RequestExtensions.Success.
	MsgRequestExtensionsSuccess uint8 = 0x01
	// MsgRequestExtensionsError is the msg_type of RequestExtensions.Error.
	MsgRequestExtensionsError uint8 = 0x02
)

// RequestExtensions is the RequestExtensions message (0x00, client to server). The client asks for extensions, right after SetupConnection.Success.
type RequestExtensions struct {
	// Client-chosen id echoed by the answer.
	RequestID uint16 `json:"request_id"`
	// Extension types requested.
	RequestedExtensions []uint16 `json:"requested_extensions"`
}

// Kind returns the registry key of RequestExtensions.
func (*RequestExtensions) Kind() Kind {
	return Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensions}
}

// Encode appends m as a RequestExtensions payload to dst.
func (m *RequestExtensions) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U16(m.RequestID)
	e.Seq064KU16(m.RequestedExtensions)
	return encodeDone(&e, dst, "RequestExtensions")
}

// Decode replaces m with the RequestExtensions read from payload.
func (m *RequestExtensions) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U16()
	m.RequestedExtensions = d.Seq064KU16(m.RequestedExtensions)
	return decodeDone(&d, "RequestExtensions")
}

// RequestExtensionsSuccess is the RequestExtensions.Success message (0x01, server to client). The extensions the server supports.
type RequestExtensionsSuccess struct {
	// request_id of the RequestExtensions answered.
	RequestID uint16 `json:"request_id"`
	// Requested extension types the server supports.
	SupportedExtensions []uint16 `json:"supported_extensions"`
}

// Kind returns the registry key of RequestExtensions.Success.
func (*RequestExtensionsSuccess) Kind() Kind {
	return Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensionsSuccess}
}

// Encode appends m as a RequestExtensions.Success payload to dst.
func (m *RequestExtensionsSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U16(m.RequestID)
	e.Seq064KU16(m.SupportedExtensions)
	return encodeDone(&e, dst, "RequestExtensions.Success")
}

// Decode replaces m with the RequestExtensions.Success read from payload.
func (m *RequestExtensionsSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U16()
	m.SupportedExtensions = d.Seq064KU16(m.SupportedExtensions)
	return decodeDone(&d, "RequestExtensions.Success")
}

// RequestExtensionsError is the RequestExtensions.Error message (0x02, server to client). None of the requested extensions is supported, or some are required.
type RequestExtensionsError struct {
	// request_id of the RequestExtensions answered.
	RequestID uint16 `json:"request_id"`
	// Requested extension types not supported.
	UnsupportedExtensions []uint16 `json:"unsupported_extensions"`
	// Extension types the server requires but the client did not request.
	RequiredExtensions []uint16 `json:"required_extensions"`
}

// Kind returns the registry key of RequestExtensions.Error.
func (*RequestExtensionsError) Kind() Kind {
	return Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensionsError}
}

// Encode appends m as a RequestExtensions.Error payload to dst.
func (m *RequestExtensionsError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U16(m.RequestID)
	e.Seq064KU16(m.UnsupportedExtensions)
	e.Seq064KU16(m.RequiredExtensions)
	return encodeDone(&e, dst, "RequestExtensions.Error")
}

// Decode replaces m with the RequestExtensions.Error read from payload.
func (m *RequestExtensionsError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U16()
	m.UnsupportedExtensions = d.Seq064KU16(m.UnsupportedExtensions)
	m.RequiredExtensions = d.Seq064KU16(m.RequiredExtensions)
	return decodeDone(&d, "RequestExtensions.Error")
}

func init() {
	register(MessageInfo{Kind: Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensions}, Name: "RequestExtensions", Protocol: ProtocolExtensionsNegotiation, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(RequestExtensions) }, keys: []keyOp{opRequest16}})
	register(MessageInfo{Kind: Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensionsSuccess}, Name: "RequestExtensions.Success", Protocol: ProtocolExtensionsNegotiation, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(RequestExtensionsSuccess) }, keys: []keyOp{opRequest16}})
	register(MessageInfo{Kind: Kind{Ext: ExtExtensionsNegotiation, Type: MsgRequestExtensionsError}, Name: "RequestExtensions.Error", Protocol: ProtocolExtensionsNegotiation, ChannelMsg: false, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(RequestExtensionsError) }, keys: []keyOp{opRequest16}})
}

var (
	_ Message = (*RequestExtensions)(nil)
	_ Message = (*RequestExtensionsSuccess)(nil)
	_ Message = (*RequestExtensionsError)(nil)
)
