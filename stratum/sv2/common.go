package sv2

// Common protocol messages (specification section 3.6), shared by all subprotocols.

const (
	// MsgSetupConnection is the msg_type of SetupConnection.
	MsgSetupConnection uint8 = 0x00
	// MsgSetupConnectionSuccess is the msg_type of SetupConnection.Success.
	MsgSetupConnectionSuccess uint8 = 0x01
	// MsgSetupConnectionError is the msg_type of SetupConnection.Error.
	MsgSetupConnectionError uint8 = 0x02
	// MsgChannelEndpointChanged is the msg_type of ChannelEndpointChanged.
	MsgChannelEndpointChanged uint8 = 0x03
	// MsgReconnect is the msg_type of Reconnect.
	MsgReconnect uint8 = 0x04
)

// SetupConnection is the SetupConnection message (0x00, client to server). It must be the first message of a connection.
type SetupConnection struct {
	// Subprotocol: 0 Mining, 1 Job Declaration, 2 Template Distribution.
	Protocol uint8 `json:"protocol"`
	// Lowest protocol version the client supports (2).
	MinVersion uint16 `json:"min_version"`
	// Highest protocol version the client supports (2).
	MaxVersion uint16 `json:"max_version"`
	// Optional features the client supports, per subprotocol.
	Flags uint32 `json:"flags"`
	// Host name or IP address the client connected to.
	EndpointHost string `json:"endpoint_host"`
	// Port the client connected to.
	EndpointPort uint16 `json:"endpoint_port"`
	// Manufacturer or developer, e.g. "Bitmain".
	Vendor string `json:"vendor"`
	// Hardware or software package, e.g. "S9i 13.5".
	HardwareVersion string `json:"hardware_version"`
	// Firmware version.
	Firmware string `json:"firmware"`
	// Vendor-defined device identifier; empty without telemetry.
	DeviceID string `json:"device_id"`
}

// Kind returns the registry key of SetupConnection.
func (*SetupConnection) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetupConnection} }

// Encode appends m as a SetupConnection payload to dst.
func (m *SetupConnection) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U8(m.Protocol)
	e.U16(m.MinVersion)
	e.U16(m.MaxVersion)
	e.U32(m.Flags)
	e.Str0255(m.EndpointHost)
	e.U16(m.EndpointPort)
	e.Str0255(m.Vendor)
	e.Str0255(m.HardwareVersion)
	e.Str0255(m.Firmware)
	e.Str0255(m.DeviceID)
	return encodeDone(&e, dst, "SetupConnection")
}

// Decode replaces m with the SetupConnection read from payload.
func (m *SetupConnection) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.Protocol = d.U8()
	m.MinVersion = d.U16()
	m.MaxVersion = d.U16()
	m.Flags = d.U32()
	m.EndpointHost = d.Str0255()
	m.EndpointPort = d.U16()
	m.Vendor = d.Str0255()
	m.HardwareVersion = d.Str0255()
	m.Firmware = d.Str0255()
	m.DeviceID = d.Str0255()
	return decodeDone(&d, "SetupConnection")
}

// SetupConnectionSuccess is the SetupConnection.Success message (0x01, server to client). The server accepts the connection.
type SetupConnectionSuccess struct {
	// Protocol version used for the rest of the connection.
	UsedVersion uint16 `json:"used_version"`
	// Optional features the server supports.
	Flags uint32 `json:"flags"`
}

// Kind returns the registry key of SetupConnection.Success.
func (*SetupConnectionSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgSetupConnectionSuccess}
}

// Encode appends m as a SetupConnection.Success payload to dst.
func (m *SetupConnectionSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U16(m.UsedVersion)
	e.U32(m.Flags)
	return encodeDone(&e, dst, "SetupConnection.Success")
}

// Decode replaces m with the SetupConnection.Success read from payload.
func (m *SetupConnectionSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.UsedVersion = d.U16()
	m.Flags = d.U32()
	return decodeDone(&d, "SetupConnection.Success")
}

// SetupConnectionError is the SetupConnection.Error message (0x02, server to client). The server refuses the connection and closes it.
type SetupConnectionError struct {
	// Features that caused the error; 0 for another reason.
	Flags uint32 `json:"flags"`
	// Human-readable error code, e.g. "unsupported-protocol".
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of SetupConnection.Error.
func (*SetupConnectionError) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetupConnectionError} }

// Encode appends m as a SetupConnection.Error payload to dst.
func (m *SetupConnectionError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.Flags)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "SetupConnection.Error")
}

// Decode replaces m with the SetupConnection.Error read from payload.
func (m *SetupConnectionError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.Flags = d.U32()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "SetupConnection.Error")
}

// ChannelEndpointChanged is the ChannelEndpointChanged message (0x03, server to client). Extension state of the channel must be negotiated again.
type ChannelEndpointChanged struct {
	// Channel whose endpoint changed.
	ChannelID uint32 `json:"channel_id"`
}

// Kind returns the registry key of ChannelEndpointChanged.
func (*ChannelEndpointChanged) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgChannelEndpointChanged}
}

// Encode appends m as a ChannelEndpointChanged payload to dst.
func (m *ChannelEndpointChanged) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	return encodeDone(&e, dst, "ChannelEndpointChanged")
}

// Decode replaces m with the ChannelEndpointChanged read from payload.
func (m *ChannelEndpointChanged) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	return decodeDone(&d, "ChannelEndpointChanged")
}

// Reconnect is the Reconnect message (0x04, server to client). The client should reconnect elsewhere.
type Reconnect struct {
	// Host to reconnect to; empty means the present host.
	NewHost string `json:"new_host"`
	// Port to reconnect to; 0 means the present port.
	NewPort uint16 `json:"new_port"`
}

// Kind returns the registry key of Reconnect.
func (*Reconnect) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgReconnect} }

// Encode appends m as a Reconnect payload to dst.
func (m *Reconnect) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.Str0255(m.NewHost)
	e.U16(m.NewPort)
	return encodeDone(&e, dst, "Reconnect")
}

// Decode replaces m with the Reconnect read from payload.
func (m *Reconnect) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.NewHost = d.Str0255()
	m.NewPort = d.U16()
	return decodeDone(&d, "Reconnect")
}

func init() {
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetupConnection}, Name: "SetupConnection", Protocol: ProtocolCommon, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(SetupConnection) }, keys: []keyOp{}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetupConnectionSuccess}, Name: "SetupConnection.Success", Protocol: ProtocolCommon, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(SetupConnectionSuccess) }, keys: []keyOp{}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetupConnectionError}, Name: "SetupConnection.Error", Protocol: ProtocolCommon, ChannelMsg: false, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(SetupConnectionError) }, keys: []keyOp{}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgChannelEndpointChanged}, Name: "ChannelEndpointChanged", Protocol: ProtocolCommon, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(ChannelEndpointChanged) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgReconnect}, Name: "Reconnect", Protocol: ProtocolCommon, ChannelMsg: false, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(Reconnect) }, keys: []keyOp{}})
}

var (
	_ Message = (*SetupConnection)(nil)
	_ Message = (*SetupConnectionSuccess)(nil)
	_ Message = (*SetupConnectionError)(nil)
	_ Message = (*ChannelEndpointChanged)(nil)
	_ Message = (*Reconnect)(nil)
)
