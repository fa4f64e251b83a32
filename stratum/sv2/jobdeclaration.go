package sv2

// Job Declaration protocol messages (specification chapter 6).

const (
	// MsgAllocateMiningJobToken is the msg_type of AllocateMiningJobToken.
	MsgAllocateMiningJobToken uint8 = 0x50
	// MsgAllocateMiningJobTokenSuccess is the msg_type of AllocateMiningJobToken.Success.
	MsgAllocateMiningJobTokenSuccess uint8 = 0x51
	// MsgProvideMissingTransactions is the msg_type of ProvideMissingTransactions.
	MsgProvideMissingTransactions uint8 = 0x55
	// MsgProvideMissingTransactionsSuccess is the msg_type of ProvideMissingTransactions.Success.
	MsgProvideMissingTransactionsSuccess uint8 = 0x56
	// MsgDeclareMiningJob is the msg_type of DeclareMiningJob.
	MsgDeclareMiningJob uint8 = 0x57
	// MsgDeclareMiningJobSuccess is the msg_type of DeclareMiningJob.Success.
	MsgDeclareMiningJobSuccess uint8 = 0x58
	// MsgDeclareMiningJobError is the msg_type of DeclareMiningJob.Error.
	MsgDeclareMiningJobError uint8 = 0x59
	// MsgPushSolution is the msg_type of PushSolution.
	MsgPushSolution uint8 = 0x60
)

// AllocateMiningJobToken is the AllocateMiningJobToken message (0x50, client to server). The job declarator client asks for a token.
type AllocateMiningJobToken struct {
	// Whatever the pool needs to identify the client.
	UserIdentifier string `json:"user_identifier"`
	// Client-chosen id echoed by the answer.
	RequestID uint32 `json:"request_id"`
}

// Kind returns the registry key of AllocateMiningJobToken.
func (*AllocateMiningJobToken) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgAllocateMiningJobToken}
}

// Encode appends m as a AllocateMiningJobToken payload to dst.
func (m *AllocateMiningJobToken) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.Str0255(m.UserIdentifier)
	e.U32(m.RequestID)
	return encodeDone(&e, dst, "AllocateMiningJobToken")
}

// Decode replaces m with the AllocateMiningJobToken read from payload.
func (m *AllocateMiningJobToken) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.UserIdentifier = d.Str0255()
	m.RequestID = d.U32()
	return decodeDone(&d, "AllocateMiningJobToken")
}

// AllocateMiningJobTokenSuccess is the AllocateMiningJobToken.Success message (0x51, server to client). The token is granted.
type AllocateMiningJobTokenSuccess struct {
	// request_id of the request answered.
	RequestID uint32 `json:"request_id"`
	// Token for declaring a job.
	MiningJobToken Bytes `json:"mining_job_token"`
	// Pool coinbase outputs, CompactSize-prefixed (coinbase_outputs in the reference implementation).
	CoinbaseTxOutputs Bytes `json:"coinbase_tx_outputs"`
}

// Kind returns the registry key of AllocateMiningJobToken.Success.
func (*AllocateMiningJobTokenSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgAllocateMiningJobTokenSuccess}
}

// Encode appends m as a AllocateMiningJobToken.Success payload to dst.
func (m *AllocateMiningJobTokenSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.B0255(m.MiningJobToken)
	e.B064K(m.CoinbaseTxOutputs)
	return encodeDone(&e, dst, "AllocateMiningJobToken.Success")
}

// Decode replaces m with the AllocateMiningJobToken.Success read from payload.
func (m *AllocateMiningJobTokenSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.MiningJobToken = d.B0255(m.MiningJobToken)
	m.CoinbaseTxOutputs = d.B064K(m.CoinbaseTxOutputs)
	return decodeDone(&d, "AllocateMiningJobToken.Success")
}

// ProvideMissingTransactions is the ProvideMissingTransactions message (0x55, server to client). The server asks for transactions of a declared job it lacks.
type ProvideMissingTransactions struct {
	// request_id of the DeclareMiningJob concerned.
	RequestID uint32 `json:"request_id"`
	// Positions of the missing transactions in wtxid_list.
	UnknownTxPositionList []uint16 `json:"unknown_tx_position_list"`
}

// Kind returns the registry key of ProvideMissingTransactions.
func (*ProvideMissingTransactions) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgProvideMissingTransactions}
}

// Encode appends m as a ProvideMissingTransactions payload to dst.
func (m *ProvideMissingTransactions) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Seq064KU16(m.UnknownTxPositionList)
	return encodeDone(&e, dst, "ProvideMissingTransactions")
}

// Decode replaces m with the ProvideMissingTransactions read from payload.
func (m *ProvideMissingTransactions) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.UnknownTxPositionList = d.Seq064KU16(m.UnknownTxPositionList)
	return decodeDone(&d, "ProvideMissingTransactions")
}

// ProvideMissingTransactionsSuccess is the ProvideMissingTransactions.Success message (0x56, client to server). The client supplies the missing transactions.
type ProvideMissingTransactionsSuccess struct {
	// request_id of the DeclareMiningJob concerned.
	RequestID uint32 `json:"request_id"`
	// Full transactions, in the order requested.
	TransactionList []Bytes `json:"transaction_list"`
}

// Kind returns the registry key of ProvideMissingTransactions.Success.
func (*ProvideMissingTransactionsSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgProvideMissingTransactionsSuccess}
}

// Encode appends m as a ProvideMissingTransactions.Success payload to dst.
func (m *ProvideMissingTransactionsSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Seq064KB016M(m.TransactionList)
	return encodeDone(&e, dst, "ProvideMissingTransactions.Success")
}

// Decode replaces m with the ProvideMissingTransactions.Success read from payload.
func (m *ProvideMissingTransactionsSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.TransactionList = d.Seq064KB016M(m.TransactionList)
	return decodeDone(&d, "ProvideMissingTransactions.Success")
}

// DeclareMiningJob is the DeclareMiningJob message (0x57, client to server). The client declares a custom job.
type DeclareMiningJob struct {
	// Client-chosen id echoed by the answer.
	RequestID uint32 `json:"request_id"`
	// Token from AllocateMiningJobToken.Success.
	MiningJobToken Bytes `json:"mining_job_token"`
	// Block header version.
	Version uint32 `json:"version"`
	// Coinbase transaction before the extranonce.
	CoinbaseTxPrefix Bytes `json:"coinbase_tx_prefix"`
	// Coinbase transaction after the extranonce.
	CoinbaseTxSuffix Bytes `json:"coinbase_tx_suffix"`
	// wtxids of the template's transactions.
	WtxidList []U256 `json:"wtxid_list"`
	// Extra data the pool may need to validate the job.
	ExcessData Bytes `json:"excess_data"`
}

// Kind returns the registry key of DeclareMiningJob.
func (*DeclareMiningJob) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgDeclareMiningJob} }

// Encode appends m as a DeclareMiningJob payload to dst.
func (m *DeclareMiningJob) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.B0255(m.MiningJobToken)
	e.U32(m.Version)
	e.B064K(m.CoinbaseTxPrefix)
	e.B064K(m.CoinbaseTxSuffix)
	e.Seq064KU256(m.WtxidList)
	e.B064K(m.ExcessData)
	return encodeDone(&e, dst, "DeclareMiningJob")
}

// Decode replaces m with the DeclareMiningJob read from payload.
func (m *DeclareMiningJob) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.MiningJobToken = d.B0255(m.MiningJobToken)
	m.Version = d.U32()
	m.CoinbaseTxPrefix = d.B064K(m.CoinbaseTxPrefix)
	m.CoinbaseTxSuffix = d.B064K(m.CoinbaseTxSuffix)
	m.WtxidList = d.Seq064KU256(m.WtxidList)
	m.ExcessData = d.B064K(m.ExcessData)
	return decodeDone(&d, "DeclareMiningJob")
}

// DeclareMiningJobSuccess is the DeclareMiningJob.Success message (0x58, server to client). The declared job is accepted.
type DeclareMiningJobSuccess struct {
	// request_id of the DeclareMiningJob answered.
	RequestID uint32 `json:"request_id"`
	// Token identifying the accepted custom job.
	NewMiningJobToken Bytes `json:"new_mining_job_token"`
}

// Kind returns the registry key of DeclareMiningJob.Success.
func (*DeclareMiningJobSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgDeclareMiningJobSuccess}
}

// Encode appends m as a DeclareMiningJob.Success payload to dst.
func (m *DeclareMiningJobSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.B0255(m.NewMiningJobToken)
	return encodeDone(&e, dst, "DeclareMiningJob.Success")
}

// Decode replaces m with the DeclareMiningJob.Success read from payload.
func (m *DeclareMiningJobSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.NewMiningJobToken = d.B0255(m.NewMiningJobToken)
	return decodeDone(&d, "DeclareMiningJob.Success")
}

// DeclareMiningJobError is the DeclareMiningJob.Error message (0x59, server to client). The declared job is rejected.
type DeclareMiningJobError struct {
	// request_id of the DeclareMiningJob answered.
	RequestID uint32 `json:"request_id"`
	// Human-readable error code.
	ErrorCode string `json:"error_code"`
	// Optional details about the error.
	ErrorDetails Bytes `json:"error_details"`
}

// Kind returns the registry key of DeclareMiningJob.Error.
func (*DeclareMiningJobError) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgDeclareMiningJobError} }

// Encode appends m as a DeclareMiningJob.Error payload to dst.
func (m *DeclareMiningJobError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Str0255(m.ErrorCode)
	e.B064K(m.ErrorDetails)
	return encodeDone(&e, dst, "DeclareMiningJob.Error")
}

// Decode replaces m with the DeclareMiningJob.Error read from payload.
func (m *DeclareMiningJobError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.ErrorCode = d.Str0255()
	m.ErrorDetails = d.B064K(m.ErrorDetails)
	return decodeDone(&d, "DeclareMiningJob.Error")
}

// PushSolution is the PushSolution message (0x60, client to server). The client reports a block solution for a declared job.
type PushSolution struct {
	// Full extranonce of the solution.
	Extranonce Bytes `json:"extranonce"`
	// Previous block hash ("prev hash" in the specification).
	PrevHash U256 `json:"prev_hash"`
	// Header nonce.
	Nonce uint32 `json:"nonce"`
	// Header nTime.
	Ntime uint32 `json:"ntime"`
	// Header nBits.
	Nbits uint32 `json:"nbits"`
	// Header version.
	Version uint32 `json:"version"`
}

// Kind returns the registry key of PushSolution.
func (*PushSolution) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgPushSolution} }

// Encode appends m as a PushSolution payload to dst.
func (m *PushSolution) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.B032(m.Extranonce)
	e.U256(m.PrevHash)
	e.U32(m.Nonce)
	e.U32(m.Ntime)
	e.U32(m.Nbits)
	e.U32(m.Version)
	return encodeDone(&e, dst, "PushSolution")
}

// Decode replaces m with the PushSolution read from payload.
func (m *PushSolution) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.Extranonce = d.B032(m.Extranonce)
	m.PrevHash = d.U256()
	m.Nonce = d.U32()
	m.Ntime = d.U32()
	m.Nbits = d.U32()
	m.Version = d.U32()
	return decodeDone(&d, "PushSolution")
}

func init() {
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgAllocateMiningJobToken}, Name: "AllocateMiningJobToken", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(AllocateMiningJobToken) }, keys: []keyOp{opSkipStr, opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgAllocateMiningJobTokenSuccess}, Name: "AllocateMiningJobToken.Success", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(AllocateMiningJobTokenSuccess) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgProvideMissingTransactions}, Name: "ProvideMissingTransactions", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ServerToClient, Role: RoleRequest,
		New: func() Message { return new(ProvideMissingTransactions) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgProvideMissingTransactionsSuccess}, Name: "ProvideMissingTransactions.Success", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ClientToServer, Role: RoleResponse,
		New: func() Message { return new(ProvideMissingTransactionsSuccess) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgDeclareMiningJob}, Name: "DeclareMiningJob", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(DeclareMiningJob) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgDeclareMiningJobSuccess}, Name: "DeclareMiningJob.Success", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(DeclareMiningJobSuccess) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgDeclareMiningJobError}, Name: "DeclareMiningJob.Error", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(DeclareMiningJobError) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgPushSolution}, Name: "PushSolution", Protocol: ProtocolJobDeclaration, ChannelMsg: false, Direction: ClientToServer, Role: RoleNotification,
		New: func() Message { return new(PushSolution) }, keys: []keyOp{}})
}

var (
	_ Message = (*AllocateMiningJobToken)(nil)
	_ Message = (*AllocateMiningJobTokenSuccess)(nil)
	_ Message = (*ProvideMissingTransactions)(nil)
	_ Message = (*ProvideMissingTransactionsSuccess)(nil)
	_ Message = (*DeclareMiningJob)(nil)
	_ Message = (*DeclareMiningJobSuccess)(nil)
	_ Message = (*DeclareMiningJobError)(nil)
	_ Message = (*PushSolution)(nil)
)
