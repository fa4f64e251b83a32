package sv2

// Template Distribution protocol messages (specification chapter 7).

const (
	// MsgCoinbaseOutputConstraints is the msg_type of CoinbaseOutputConstraints.
	MsgCoinbaseOutputConstraints uint8 = 0x70
	// MsgNewTemplate is the msg_type of NewTemplate.
	MsgNewTemplate uint8 = 0x71
	// MsgTemplateSetNewPrevHash is the msg_type of SetNewPrevHash.
	MsgTemplateSetNewPrevHash uint8 = 0x72
	// MsgRequestTransactionData is the msg_type of RequestTransactionData.
	MsgRequestTransactionData uint8 = 0x73
	// MsgRequestTransactionDataSuccess is the msg_type of RequestTransactionData.Success.
	MsgRequestTransactionDataSuccess uint8 = 0x74
	// MsgRequestTransactionDataError is the msg_type of RequestTransactionData.Error.
	MsgRequestTransactionDataError uint8 = 0x75
	// MsgSubmitSolution is the msg_type of SubmitSolution.
	MsgSubmitSolution uint8 = 0x76
)

// CoinbaseOutputConstraints is the CoinbaseOutputConstraints message (0x70, client to server). The client states how much it will add to the coinbase outputs.
type CoinbaseOutputConstraints struct {
	// Most serialized bytes the client adds to coinbase outputs.
	CoinbaseOutputMaxAdditionalSize uint32 `json:"coinbase_output_max_additional_size"`
	// Most sigops the client adds to coinbase outputs.
	CoinbaseOutputMaxAdditionalSigops uint16 `json:"coinbase_output_max_additional_sigops"`
}

// Kind returns the registry key of CoinbaseOutputConstraints.
func (*CoinbaseOutputConstraints) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgCoinbaseOutputConstraints}
}

// Encode appends m as a CoinbaseOutputConstraints payload to dst.
func (m *CoinbaseOutputConstraints) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.CoinbaseOutputMaxAdditionalSize)
	e.U16(m.CoinbaseOutputMaxAdditionalSigops)
	return encodeDone(&e, dst, "CoinbaseOutputConstraints")
}

// Decode replaces m with the CoinbaseOutputConstraints read from payload.
func (m *CoinbaseOutputConstraints) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.CoinbaseOutputMaxAdditionalSize = d.U32()
	m.CoinbaseOutputMaxAdditionalSigops = d.U16()
	return decodeDone(&d, "CoinbaseOutputConstraints")
}

// NewTemplate is the NewTemplate message (0x71, server to client). A new block template.
type NewTemplate struct {
	// Server id of the template, strictly increasing.
	TemplateID uint64 `json:"template_id"`
	// Whether the template waits for a future SetNewPrevHash.
	FutureTemplate bool `json:"future_template"`
	// Block header version.
	Version uint32 `json:"version"`
	// Coinbase transaction nVersion.
	CoinbaseTxVersion uint32 `json:"coinbase_tx_version"`
	// Start of the coinbase script (up to 8 bytes).
	CoinbasePrefix Bytes `json:"coinbase_prefix"`
	// Coinbase input nSequence.
	CoinbaseTxInputSequence uint32 `json:"coinbase_tx_input_sequence"`
	// Satoshis available to the client's coinbase outputs.
	CoinbaseTxValueRemaining uint64 `json:"coinbase_tx_value_remaining"`
	// Number of outputs in CoinbaseTxOutputs.
	CoinbaseTxOutputsCount uint32 `json:"coinbase_tx_outputs_count"`
	// Outputs to place last in the coinbase.
	CoinbaseTxOutputs Bytes `json:"coinbase_tx_outputs"`
	// Coinbase transaction locktime.
	CoinbaseTxLocktime uint32 `json:"coinbase_tx_locktime"`
	// Merkle path hashes, deepest first.
	MerklePath []U256 `json:"merkle_path"`
}

// Kind returns the registry key of NewTemplate.
func (*NewTemplate) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgNewTemplate} }

// Encode appends m as a NewTemplate payload to dst.
func (m *NewTemplate) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	e.Bool(m.FutureTemplate)
	e.U32(m.Version)
	e.U32(m.CoinbaseTxVersion)
	e.B0255(m.CoinbasePrefix)
	e.U32(m.CoinbaseTxInputSequence)
	e.U64(m.CoinbaseTxValueRemaining)
	e.U32(m.CoinbaseTxOutputsCount)
	e.B064K(m.CoinbaseTxOutputs)
	e.U32(m.CoinbaseTxLocktime)
	e.Seq0255U256(m.MerklePath)
	return encodeDone(&e, dst, "NewTemplate")
}

// Decode replaces m with the NewTemplate read from payload.
func (m *NewTemplate) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	m.FutureTemplate = d.Bool()
	m.Version = d.U32()
	m.CoinbaseTxVersion = d.U32()
	m.CoinbasePrefix = d.B0255(m.CoinbasePrefix)
	m.CoinbaseTxInputSequence = d.U32()
	m.CoinbaseTxValueRemaining = d.U64()
	m.CoinbaseTxOutputsCount = d.U32()
	m.CoinbaseTxOutputs = d.B064K(m.CoinbaseTxOutputs)
	m.CoinbaseTxLocktime = d.U32()
	m.MerklePath = d.Seq0255U256(m.MerklePath)
	return decodeDone(&d, "NewTemplate")
}

// TemplateSetNewPrevHash is the SetNewPrevHash message (0x72, server to client). Template Distribution message (named SetNewPrevHash in the specification): a new chain tip for a template.
type TemplateSetNewPrevHash struct {
	// Template the hash applies to.
	TemplateID uint64 `json:"template_id"`
	// Previous block hash.
	PrevHash U256 `json:"prev_hash"`
	// nTime at which to start.
	HeaderTimestamp uint32 `json:"header_timestamp"`
	// Header nBits (nBits in the specification).
	NBits uint32 `json:"n_bits"`
	// Largest hash that makes a valid block.
	Target U256 `json:"target"`
}

// Kind returns the registry key of SetNewPrevHash.
func (*TemplateSetNewPrevHash) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgTemplateSetNewPrevHash}
}

// Encode appends m as a SetNewPrevHash payload to dst.
func (m *TemplateSetNewPrevHash) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	e.U256(m.PrevHash)
	e.U32(m.HeaderTimestamp)
	e.U32(m.NBits)
	e.U256(m.Target)
	return encodeDone(&e, dst, "SetNewPrevHash")
}

// Decode replaces m with the SetNewPrevHash read from payload.
func (m *TemplateSetNewPrevHash) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	m.PrevHash = d.U256()
	m.HeaderTimestamp = d.U32()
	m.NBits = d.U32()
	m.Target = d.U256()
	return decodeDone(&d, "SetNewPrevHash")
}

// RequestTransactionData is the RequestTransactionData message (0x73, client to server). The client asks for a template's transactions.
type RequestTransactionData struct {
	// Template whose transactions are wanted.
	TemplateID uint64 `json:"template_id"`
}

// Kind returns the registry key of RequestTransactionData.
func (*RequestTransactionData) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgRequestTransactionData}
}

// Encode appends m as a RequestTransactionData payload to dst.
func (m *RequestTransactionData) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	return encodeDone(&e, dst, "RequestTransactionData")
}

// Decode replaces m with the RequestTransactionData read from payload.
func (m *RequestTransactionData) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	return decodeDone(&d, "RequestTransactionData")
}

// RequestTransactionDataSuccess is the RequestTransactionData.Success message (0x74, server to client). A template's transactions.
type RequestTransactionDataSuccess struct {
	// Template the transactions belong to.
	TemplateID uint64 `json:"template_id"`
	// Extra data the pool may need to validate work.
	ExcessData Bytes `json:"excess_data"`
	// Full transactions of the template.
	TransactionList []Bytes `json:"transaction_list"`
}

// Kind returns the registry key of RequestTransactionData.Success.
func (*RequestTransactionDataSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgRequestTransactionDataSuccess}
}

// Encode appends m as a RequestTransactionData.Success payload to dst.
func (m *RequestTransactionDataSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	e.B064K(m.ExcessData)
	e.Seq064KB016M(m.TransactionList)
	return encodeDone(&e, dst, "RequestTransactionData.Success")
}

// Decode replaces m with the RequestTransactionData.Success read from payload.
func (m *RequestTransactionDataSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	m.ExcessData = d.B064K(m.ExcessData)
	m.TransactionList = d.Seq064KB016M(m.TransactionList)
	return decodeDone(&d, "RequestTransactionData.Success")
}

// RequestTransactionDataError is the RequestTransactionData.Error message (0x75, server to client). The transactions cannot be provided.
type RequestTransactionDataError struct {
	// Template requested.
	TemplateID uint64 `json:"template_id"`
	// Why no data is provided, e.g. "stale-template-id".
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of RequestTransactionData.Error.
func (*RequestTransactionDataError) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgRequestTransactionDataError}
}

// Encode appends m as a RequestTransactionData.Error payload to dst.
func (m *RequestTransactionDataError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "RequestTransactionData.Error")
}

// Decode replaces m with the RequestTransactionData.Error read from payload.
func (m *RequestTransactionDataError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "RequestTransactionData.Error")
}

// SubmitSolution is the SubmitSolution message (0x76, client to server). The client submits a block solution for a template.
type SubmitSolution struct {
	// Template solved.
	TemplateID uint64 `json:"template_id"`
	// Header version.
	Version uint32 `json:"version"`
	// Header nTime.
	HeaderTimestamp uint32 `json:"header_timestamp"`
	// Header nonce.
	HeaderNonce uint32 `json:"header_nonce"`
	// Full serialized coinbase transaction.
	CoinbaseTx Bytes `json:"coinbase_tx"`
}

// Kind returns the registry key of SubmitSolution.
func (*SubmitSolution) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSubmitSolution} }

// Encode appends m as a SubmitSolution payload to dst.
func (m *SubmitSolution) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U64(m.TemplateID)
	e.U32(m.Version)
	e.U32(m.HeaderTimestamp)
	e.U32(m.HeaderNonce)
	e.B064K(m.CoinbaseTx)
	return encodeDone(&e, dst, "SubmitSolution")
}

// Decode replaces m with the SubmitSolution read from payload.
func (m *SubmitSolution) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.TemplateID = d.U64()
	m.Version = d.U32()
	m.HeaderTimestamp = d.U32()
	m.HeaderNonce = d.U32()
	m.CoinbaseTx = d.B064K(m.CoinbaseTx)
	return decodeDone(&d, "SubmitSolution")
}

func init() {
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgCoinbaseOutputConstraints}, Name: "CoinbaseOutputConstraints", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ClientToServer, Role: RoleNotification,
		New: func() Message { return new(CoinbaseOutputConstraints) }, keys: []keyOp{}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgNewTemplate}, Name: "NewTemplate", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(NewTemplate) }, keys: []keyOp{opTemplate}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgTemplateSetNewPrevHash}, Name: "SetNewPrevHash", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(TemplateSetNewPrevHash) }, keys: []keyOp{opTemplate}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgRequestTransactionData}, Name: "RequestTransactionData", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(RequestTransactionData) }, keys: []keyOp{opTemplate}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgRequestTransactionDataSuccess}, Name: "RequestTransactionData.Success", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(RequestTransactionDataSuccess) }, keys: []keyOp{opTemplate}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgRequestTransactionDataError}, Name: "RequestTransactionData.Error", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(RequestTransactionDataError) }, keys: []keyOp{opTemplate}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSubmitSolution}, Name: "SubmitSolution", Protocol: ProtocolTemplateDistribution, ChannelMsg: false, Direction: ClientToServer, Role: RoleNotification,
		New: func() Message { return new(SubmitSolution) }, keys: []keyOp{opTemplate}})
}

var (
	_ Message = (*CoinbaseOutputConstraints)(nil)
	_ Message = (*NewTemplate)(nil)
	_ Message = (*TemplateSetNewPrevHash)(nil)
	_ Message = (*RequestTransactionData)(nil)
	_ Message = (*RequestTransactionDataSuccess)(nil)
	_ Message = (*RequestTransactionDataError)(nil)
	_ Message = (*SubmitSolution)(nil)
)
