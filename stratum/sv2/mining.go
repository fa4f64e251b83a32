package sv2

// Mining protocol messages (specification chapter 5).

const (
	// MsgOpenStandardMiningChannel is the msg_type of OpenStandardMiningChannel.
	MsgOpenStandardMiningChannel uint8 = 0x10
	// MsgOpenStandardMiningChannelSuccess is the msg_type of OpenStandardMiningChannel.Success.
	MsgOpenStandardMiningChannelSuccess uint8 = 0x11
	// MsgOpenMiningChannelError is the msg_type of OpenMiningChannel.Error.
	MsgOpenMiningChannelError uint8 = 0x12
	// MsgOpenExtendedMiningChannel is the msg_type of OpenExtendedMiningChannel.
	MsgOpenExtendedMiningChannel uint8 = 0x13
	// MsgOpenExtendedMiningChannelSuccess is the msg_type of OpenExtendedMiningChannel.Success.
	MsgOpenExtendedMiningChannelSuccess uint8 = 0x14
	// MsgNewMiningJob is the msg_type of NewMiningJob.
	MsgNewMiningJob uint8 = 0x15
	// MsgUpdateChannel is the msg_type of UpdateChannel.
	MsgUpdateChannel uint8 = 0x16
	// MsgUpdateChannelError is the msg_type of UpdateChannel.Error.
	MsgUpdateChannelError uint8 = 0x17
	// MsgCloseChannel is the msg_type of CloseChannel.
	MsgCloseChannel uint8 = 0x18
	// MsgSetExtranoncePrefix is the msg_type of SetExtranoncePrefix.
	MsgSetExtranoncePrefix uint8 = 0x19
	// MsgSubmitSharesStandard is the msg_type of SubmitSharesStandard.
	MsgSubmitSharesStandard uint8 = 0x1a
	// MsgSubmitSharesExtended is the msg_type of SubmitSharesExtended.
	MsgSubmitSharesExtended uint8 = 0x1b
	// MsgSubmitSharesSuccess is the msg_type of SubmitShares.Success.
	MsgSubmitSharesSuccess uint8 = 0x1c
	// MsgSubmitSharesError is the msg_type of SubmitShares.Error.
	MsgSubmitSharesError uint8 = 0x1d
	// MsgNewExtendedMiningJob is the msg_type of NewExtendedMiningJob.
	MsgNewExtendedMiningJob uint8 = 0x1f
	// MsgSetNewPrevHash is the msg_type of SetNewPrevHash.
	MsgSetNewPrevHash uint8 = 0x20
	// MsgSetTarget is the msg_type of SetTarget.
	MsgSetTarget uint8 = 0x21
	// MsgSetCustomMiningJob is the msg_type of SetCustomMiningJob.
	MsgSetCustomMiningJob uint8 = 0x22
	// MsgSetCustomMiningJobSuccess is the msg_type of SetCustomMiningJob.Success.
	MsgSetCustomMiningJobSuccess uint8 = 0x23
	// MsgSetCustomMiningJobError is the msg_type of SetCustomMiningJob.Error.
	MsgSetCustomMiningJobError uint8 = 0x24
	// MsgSetGroupChannel is the msg_type of SetGroupChannel.
	MsgSetGroupChannel uint8 = 0x25
)

// OpenStandardMiningChannel is the OpenStandardMiningChannel message (0x10, client to server). It asks for a standard (header-only) channel.
type OpenStandardMiningChannel struct {
	// Client-chosen id echoed by the answer.
	RequestID uint32 `json:"request_id"`
	// Whatever the upstream needs to identify the client, e.g. "pool.worker1".
	UserIdentity string `json:"user_identity"`
	// Expected hash rate of the channel in h/s.
	NominalHashRate F32 `json:"nominal_hash_rate"`
	// Largest target the device accepts.
	MaxTarget U256 `json:"max_target"`
}

// Kind returns the registry key of OpenStandardMiningChannel.
func (*OpenStandardMiningChannel) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgOpenStandardMiningChannel}
}

// Encode appends m as a OpenStandardMiningChannel payload to dst.
func (m *OpenStandardMiningChannel) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Str0255(m.UserIdentity)
	e.F32(float32(m.NominalHashRate))
	e.U256(m.MaxTarget)
	return encodeDone(&e, dst, "OpenStandardMiningChannel")
}

// Decode replaces m with the OpenStandardMiningChannel read from payload.
func (m *OpenStandardMiningChannel) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.UserIdentity = d.Str0255()
	m.NominalHashRate = F32(d.F32())
	m.MaxTarget = d.U256()
	return decodeDone(&d, "OpenStandardMiningChannel")
}

// OpenStandardMiningChannelSuccess is the OpenStandardMiningChannel.Success message (0x11, server to client). The standard channel is open.
type OpenStandardMiningChannelSuccess struct {
	// request_id of the OpenStandardMiningChannel answered.
	RequestID uint32 `json:"request_id"`
	// Id of the new channel.
	ChannelID uint32 `json:"channel_id"`
	// Initial target of the channel.
	Target U256 `json:"target"`
	// Implicit first part of the extranonce.
	ExtranoncePrefix Bytes `json:"extranonce_prefix"`
	// Group channel the new channel belongs to.
	GroupChannelID uint32 `json:"group_channel_id"`
}

// Kind returns the registry key of OpenStandardMiningChannel.Success.
func (*OpenStandardMiningChannelSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgOpenStandardMiningChannelSuccess}
}

// Encode appends m as a OpenStandardMiningChannel.Success payload to dst.
func (m *OpenStandardMiningChannelSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.U32(m.ChannelID)
	e.U256(m.Target)
	e.B032(m.ExtranoncePrefix)
	e.U32(m.GroupChannelID)
	return encodeDone(&e, dst, "OpenStandardMiningChannel.Success")
}

// Decode replaces m with the OpenStandardMiningChannel.Success read from payload.
func (m *OpenStandardMiningChannelSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.ChannelID = d.U32()
	m.Target = d.U256()
	m.ExtranoncePrefix = d.B032(m.ExtranoncePrefix)
	m.GroupChannelID = d.U32()
	return decodeDone(&d, "OpenStandardMiningChannel.Success")
}

// OpenMiningChannelError is the OpenMiningChannel.Error message (0x12, server to client). A standard or extended channel could not be opened.
type OpenMiningChannelError struct {
	// request_id of the open request answered.
	RequestID uint32 `json:"request_id"`
	// Human-readable error code, e.g. "unknown-user".
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of OpenMiningChannel.Error.
func (*OpenMiningChannelError) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgOpenMiningChannelError}
}

// Encode appends m as a OpenMiningChannel.Error payload to dst.
func (m *OpenMiningChannelError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "OpenMiningChannel.Error")
}

// Decode replaces m with the OpenMiningChannel.Error read from payload.
func (m *OpenMiningChannelError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "OpenMiningChannel.Error")
}

// OpenExtendedMiningChannel is the OpenExtendedMiningChannel message (0x13, client to server). It asks for an extended channel.
type OpenExtendedMiningChannel struct {
	// Client-chosen id echoed by the answer.
	RequestID uint32 `json:"request_id"`
	// Whatever the upstream needs to identify the client.
	UserIdentity string `json:"user_identity"`
	// Expected hash rate of the channel in h/s.
	NominalHashRate F32 `json:"nominal_hash_rate"`
	// Largest target the device accepts.
	MaxTarget U256 `json:"max_target"`
	// Smallest extranonce size the client needs.
	MinExtranonceSize uint16 `json:"min_extranonce_size"`
}

// Kind returns the registry key of OpenExtendedMiningChannel.
func (*OpenExtendedMiningChannel) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgOpenExtendedMiningChannel}
}

// Encode appends m as a OpenExtendedMiningChannel payload to dst.
func (m *OpenExtendedMiningChannel) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.Str0255(m.UserIdentity)
	e.F32(float32(m.NominalHashRate))
	e.U256(m.MaxTarget)
	e.U16(m.MinExtranonceSize)
	return encodeDone(&e, dst, "OpenExtendedMiningChannel")
}

// Decode replaces m with the OpenExtendedMiningChannel read from payload.
func (m *OpenExtendedMiningChannel) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.UserIdentity = d.Str0255()
	m.NominalHashRate = F32(d.F32())
	m.MaxTarget = d.U256()
	m.MinExtranonceSize = d.U16()
	return decodeDone(&d, "OpenExtendedMiningChannel")
}

// OpenExtendedMiningChannelSuccess is the OpenExtendedMiningChannel.Success message (0x14, server to client). The extended channel is open.
type OpenExtendedMiningChannelSuccess struct {
	// request_id of the OpenExtendedMiningChannel answered.
	RequestID uint32 `json:"request_id"`
	// Id of the new channel.
	ChannelID uint32 `json:"channel_id"`
	// Initial target of the channel.
	Target U256 `json:"target"`
	// Extranonce size set for the channel.
	ExtranonceSize uint16 `json:"extranonce_size"`
	// Implicit first part of the extranonce.
	ExtranoncePrefix Bytes `json:"extranonce_prefix"`
	// Group channel the new channel belongs to.
	GroupChannelID uint32 `json:"group_channel_id"`
}

// Kind returns the registry key of OpenExtendedMiningChannel.Success.
func (*OpenExtendedMiningChannelSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgOpenExtendedMiningChannelSuccess}
}

// Encode appends m as a OpenExtendedMiningChannel.Success payload to dst.
func (m *OpenExtendedMiningChannelSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.RequestID)
	e.U32(m.ChannelID)
	e.U256(m.Target)
	e.U16(m.ExtranonceSize)
	e.B032(m.ExtranoncePrefix)
	e.U32(m.GroupChannelID)
	return encodeDone(&e, dst, "OpenExtendedMiningChannel.Success")
}

// Decode replaces m with the OpenExtendedMiningChannel.Success read from payload.
func (m *OpenExtendedMiningChannelSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.RequestID = d.U32()
	m.ChannelID = d.U32()
	m.Target = d.U256()
	m.ExtranonceSize = d.U16()
	m.ExtranoncePrefix = d.B032(m.ExtranoncePrefix)
	m.GroupChannelID = d.U32()
	return decodeDone(&d, "OpenExtendedMiningChannel.Success")
}

// NewMiningJob is the NewMiningJob message (0x15, server to client). A job for a standard channel.
type NewMiningJob struct {
	// Standard channel the job is for.
	ChannelID uint32 `json:"channel_id"`
	// Server id of the job.
	JobID uint32 `json:"job_id"`
	// Smallest usable nTime; nil for a future job.
	MinNtime *uint32 `json:"min_ntime"`
	// Block header version.
	Version uint32 `json:"version"`
	// Merkle root of the block header.
	MerkleRoot U256 `json:"merkle_root"`
}

// Kind returns the registry key of NewMiningJob.
func (*NewMiningJob) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgNewMiningJob} }

// Encode appends m as a NewMiningJob payload to dst.
func (m *NewMiningJob) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.JobID)
	e.OptionU32(m.MinNtime)
	e.U32(m.Version)
	e.U256(m.MerkleRoot)
	return encodeDone(&e, dst, "NewMiningJob")
}

// Decode replaces m with the NewMiningJob read from payload.
func (m *NewMiningJob) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.JobID = d.U32()
	m.MinNtime = d.OptionU32(m.MinNtime)
	m.Version = d.U32()
	m.MerkleRoot = d.U256()
	return decodeDone(&d, "NewMiningJob")
}

// UpdateChannel is the UpdateChannel message (0x16, client to server). The client updates its hash rate and maximum target; only a failure is answered, so it is a notification.
type UpdateChannel struct {
	// Channel updated.
	ChannelID uint32 `json:"channel_id"`
	// New expected hash rate in h/s.
	NominalHashRate F32 `json:"nominal_hash_rate"`
	// Largest target the device now accepts.
	MaximumTarget U256 `json:"maximum_target"`
}

// Kind returns the registry key of UpdateChannel.
func (*UpdateChannel) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgUpdateChannel} }

// Encode appends m as a UpdateChannel payload to dst.
func (m *UpdateChannel) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.F32(float32(m.NominalHashRate))
	e.U256(m.MaximumTarget)
	return encodeDone(&e, dst, "UpdateChannel")
}

// Decode replaces m with the UpdateChannel read from payload.
func (m *UpdateChannel) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.NominalHashRate = F32(d.F32())
	m.MaximumTarget = d.U256()
	return decodeDone(&d, "UpdateChannel")
}

// UpdateChannelError is the UpdateChannel.Error message (0x17, server to client). An UpdateChannel was refused.
type UpdateChannelError struct {
	// Channel whose update failed.
	ChannelID uint32 `json:"channel_id"`
	// Human-readable error code.
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of UpdateChannel.Error.
func (*UpdateChannelError) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgUpdateChannelError} }

// Encode appends m as a UpdateChannel.Error payload to dst.
func (m *UpdateChannelError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "UpdateChannel.Error")
}

// Decode replaces m with the UpdateChannel.Error read from payload.
func (m *UpdateChannelError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "UpdateChannel.Error")
}

// CloseChannel is the CloseChannel message (0x18, either direction). Either side closes a channel.
type CloseChannel struct {
	// Channel closed.
	ChannelID uint32 `json:"channel_id"`
	// Reason for closing.
	ReasonCode string `json:"reason_code"`
}

// Kind returns the registry key of CloseChannel.
func (*CloseChannel) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgCloseChannel} }

// Encode appends m as a CloseChannel payload to dst.
func (m *CloseChannel) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.Str0255(m.ReasonCode)
	return encodeDone(&e, dst, "CloseChannel")
}

// Decode replaces m with the CloseChannel read from payload.
func (m *CloseChannel) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.ReasonCode = d.Str0255()
	return decodeDone(&d, "CloseChannel")
}

// SetExtranoncePrefix is the SetExtranoncePrefix message (0x19, server to client). It changes a channel's extranonce prefix.
type SetExtranoncePrefix struct {
	// Standard or extended channel.
	ChannelID uint32 `json:"channel_id"`
	// New implicit first part of the extranonce.
	ExtranoncePrefix Bytes `json:"extranonce_prefix"`
}

// Kind returns the registry key of SetExtranoncePrefix.
func (*SetExtranoncePrefix) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetExtranoncePrefix} }

// Encode appends m as a SetExtranoncePrefix payload to dst.
func (m *SetExtranoncePrefix) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.B032(m.ExtranoncePrefix)
	return encodeDone(&e, dst, "SetExtranoncePrefix")
}

// Decode replaces m with the SetExtranoncePrefix read from payload.
func (m *SetExtranoncePrefix) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.ExtranoncePrefix = d.B032(m.ExtranoncePrefix)
	return decodeDone(&d, "SetExtranoncePrefix")
}

// SubmitSharesStandard is the SubmitSharesStandard message (0x1a, client to server). A share on a standard channel.
type SubmitSharesStandard struct {
	// Channel the share is for.
	ChannelID uint32 `json:"channel_id"`
	// Sequential id of the submit within the channel.
	SequenceNumber uint32 `json:"sequence_number"`
	// Job the share solves.
	JobID uint32 `json:"job_id"`
	// Header nonce.
	Nonce uint32 `json:"nonce"`
	// Header nTime.
	Ntime uint32 `json:"ntime"`
	// Full header nVersion.
	Version uint32 `json:"version"`
}

// Kind returns the registry key of SubmitSharesStandard.
func (*SubmitSharesStandard) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSubmitSharesStandard} }

// Encode appends m as a SubmitSharesStandard payload to dst.
func (m *SubmitSharesStandard) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.SequenceNumber)
	e.U32(m.JobID)
	e.U32(m.Nonce)
	e.U32(m.Ntime)
	e.U32(m.Version)
	return encodeDone(&e, dst, "SubmitSharesStandard")
}

// Decode replaces m with the SubmitSharesStandard read from payload.
func (m *SubmitSharesStandard) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.SequenceNumber = d.U32()
	m.JobID = d.U32()
	m.Nonce = d.U32()
	m.Ntime = d.U32()
	m.Version = d.U32()
	return decodeDone(&d, "SubmitSharesStandard")
}

// SubmitSharesExtended is the SubmitSharesExtended message (0x1b, client to server). A share on an extended channel, possibly followed by extension TLV fields.
type SubmitSharesExtended struct {
	// Channel the share is for.
	ChannelID uint32 `json:"channel_id"`
	// Sequential id of the submit within the channel.
	SequenceNumber uint32 `json:"sequence_number"`
	// Job the share solves.
	JobID uint32 `json:"job_id"`
	// Header nonce.
	Nonce uint32 `json:"nonce"`
	// Header nTime.
	Ntime uint32 `json:"ntime"`
	// Full header nVersion.
	Version uint32 `json:"version"`
	// Extranonce bytes the client rolled.
	Extranonce Bytes `json:"extranonce"`
	// TLV fields of negotiated extensions, after the fixed fields.
	TLVs []TLV `json:"tlvs,omitempty"`
}

// Kind returns the registry key of SubmitSharesExtended.
func (*SubmitSharesExtended) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSubmitSharesExtended} }

// Encode appends m as a SubmitSharesExtended payload to dst.
func (m *SubmitSharesExtended) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.SequenceNumber)
	e.U32(m.JobID)
	e.U32(m.Nonce)
	e.U32(m.Ntime)
	e.U32(m.Version)
	e.B032(m.Extranonce)
	e.TLVs(m.TLVs)
	return encodeDone(&e, dst, "SubmitSharesExtended")
}

// Decode replaces m with the SubmitSharesExtended read from payload.
func (m *SubmitSharesExtended) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.SequenceNumber = d.U32()
	m.JobID = d.U32()
	m.Nonce = d.U32()
	m.Ntime = d.U32()
	m.Version = d.U32()
	m.Extranonce = d.B032(m.Extranonce)
	m.TLVs = d.TLVs(m.TLVs)
	return decodeDone(&d, "SubmitSharesExtended")
}

// SubmitSharesSuccess is the SubmitShares.Success message (0x1c, server to client). It acknowledges every submit of the channel up to LastSequenceNumber.
type SubmitSharesSuccess struct {
	// Channel acknowledged.
	ChannelID uint32 `json:"channel_id"`
	// Most recent sequence number acknowledged.
	LastSequenceNumber uint32 `json:"last_sequence_number"`
	// Submits acknowledged by this message.
	NewSubmitsAcceptedCount uint32 `json:"new_submits_accepted_count"`
	// Sum of the difficulty of the shares acknowledged.
	NewSharesSum uint64 `json:"new_shares_sum"`
}

// Kind returns the registry key of SubmitShares.Success.
func (*SubmitSharesSuccess) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSubmitSharesSuccess} }

// Encode appends m as a SubmitShares.Success payload to dst.
func (m *SubmitSharesSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.LastSequenceNumber)
	e.U32(m.NewSubmitsAcceptedCount)
	e.U64(m.NewSharesSum)
	return encodeDone(&e, dst, "SubmitShares.Success")
}

// Decode replaces m with the SubmitShares.Success read from payload.
func (m *SubmitSharesSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.LastSequenceNumber = d.U32()
	m.NewSubmitsAcceptedCount = d.U32()
	m.NewSharesSum = d.U64()
	return decodeDone(&d, "SubmitShares.Success")
}

// SubmitSharesError is the SubmitShares.Error message (0x1d, server to client). It rejects one submit.
type SubmitSharesError struct {
	// Channel of the rejected submit.
	ChannelID uint32 `json:"channel_id"`
	// Sequence number of the rejected submit.
	SequenceNumber uint32 `json:"sequence_number"`
	// Human-readable error code, e.g. "stale-share".
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of SubmitShares.Error.
func (*SubmitSharesError) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSubmitSharesError} }

// Encode appends m as a SubmitShares.Error payload to dst.
func (m *SubmitSharesError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.SequenceNumber)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "SubmitShares.Error")
}

// Decode replaces m with the SubmitShares.Error read from payload.
func (m *SubmitSharesError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.SequenceNumber = d.U32()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "SubmitShares.Error")
}

// NewExtendedMiningJob is the NewExtendedMiningJob message (0x1f, server to client). A job for an extended or group channel.
type NewExtendedMiningJob struct {
	// Extended or group channel the job is for.
	ChannelID uint32 `json:"channel_id"`
	// Server id of the job.
	JobID uint32 `json:"job_id"`
	// Smallest usable nTime; nil for a future job.
	MinNtime *uint32 `json:"min_ntime"`
	// Block header version.
	Version uint32 `json:"version"`
	// Whether the general-purpose version bits may be rolled.
	VersionRollingAllowed bool `json:"version_rolling_allowed"`
	// Merkle path hashes, deepest first.
	MerklePath []U256 `json:"merkle_path"`
	// Coinbase transaction before the extranonce.
	CoinbaseTxPrefix Bytes `json:"coinbase_tx_prefix"`
	// Coinbase transaction after the extranonce.
	CoinbaseTxSuffix Bytes `json:"coinbase_tx_suffix"`
}

// Kind returns the registry key of NewExtendedMiningJob.
func (*NewExtendedMiningJob) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgNewExtendedMiningJob} }

// Encode appends m as a NewExtendedMiningJob payload to dst.
func (m *NewExtendedMiningJob) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.JobID)
	e.OptionU32(m.MinNtime)
	e.U32(m.Version)
	e.Bool(m.VersionRollingAllowed)
	e.Seq0255U256(m.MerklePath)
	e.B064K(m.CoinbaseTxPrefix)
	e.B064K(m.CoinbaseTxSuffix)
	return encodeDone(&e, dst, "NewExtendedMiningJob")
}

// Decode replaces m with the NewExtendedMiningJob read from payload.
func (m *NewExtendedMiningJob) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.JobID = d.U32()
	m.MinNtime = d.OptionU32(m.MinNtime)
	m.Version = d.U32()
	m.VersionRollingAllowed = d.Bool()
	m.MerklePath = d.Seq0255U256(m.MerklePath)
	m.CoinbaseTxPrefix = d.B064K(m.CoinbaseTxPrefix)
	m.CoinbaseTxSuffix = d.B064K(m.CoinbaseTxSuffix)
	return decodeDone(&d, "NewExtendedMiningJob")
}

// SetNewPrevHash is the SetNewPrevHash message (0x20, server to client). Mining protocol message: a new previous block hash activates a job.
type SetNewPrevHash struct {
	// Channel or group channel the hash is valid for.
	ChannelID uint32 `json:"channel_id"`
	// Job to mine with this hash.
	JobID uint32 `json:"job_id"`
	// Previous block hash.
	PrevHash U256 `json:"prev_hash"`
	// Smallest usable nTime.
	MinNtime uint32 `json:"min_ntime"`
	// Header nBits.
	Nbits uint32 `json:"nbits"`
}

// Kind returns the registry key of SetNewPrevHash.
func (*SetNewPrevHash) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetNewPrevHash} }

// Encode appends m as a SetNewPrevHash payload to dst.
func (m *SetNewPrevHash) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.JobID)
	e.U256(m.PrevHash)
	e.U32(m.MinNtime)
	e.U32(m.Nbits)
	return encodeDone(&e, dst, "SetNewPrevHash")
}

// Decode replaces m with the SetNewPrevHash read from payload.
func (m *SetNewPrevHash) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.JobID = d.U32()
	m.PrevHash = d.U256()
	m.MinNtime = d.U32()
	m.Nbits = d.U32()
	return decodeDone(&d, "SetNewPrevHash")
}

// SetTarget is the SetTarget message (0x21, server to client). It sets a channel's maximum share target.
type SetTarget struct {
	// Channel the target applies to.
	ChannelID uint32 `json:"channel_id"`
	// Largest hash accepted as a share.
	MaximumTarget U256 `json:"maximum_target"`
}

// Kind returns the registry key of SetTarget.
func (*SetTarget) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetTarget} }

// Encode appends m as a SetTarget payload to dst.
func (m *SetTarget) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U256(m.MaximumTarget)
	return encodeDone(&e, dst, "SetTarget")
}

// Decode replaces m with the SetTarget read from payload.
func (m *SetTarget) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.MaximumTarget = d.U256()
	return decodeDone(&d, "SetTarget")
}

// SetCustomMiningJob is the SetCustomMiningJob message (0x22, client to server). The client proposes a job it declared with a job declarator.
type SetCustomMiningJob struct {
	// Extended channel the job is for.
	ChannelID uint32 `json:"channel_id"`
	// Client-chosen id echoed by the answer.
	RequestID uint32 `json:"request_id"`
	// Token from the job declarator identifying the declared job.
	MiningJobToken Bytes `json:"mining_job_token"`
	// Block header version.
	Version uint32 `json:"version"`
	// Previous block hash.
	PrevHash U256 `json:"prev_hash"`
	// Smallest usable nTime.
	MinNtime uint32 `json:"min_ntime"`
	// Header nBits.
	Nbits uint32 `json:"nbits"`
	// Coinbase transaction nVersion.
	CoinbaseTxVersion uint32 `json:"coinbase_tx_version"`
	// Start of the coinbase script (up to 8 bytes).
	CoinbasePrefix Bytes `json:"coinbase_prefix"`
	// Coinbase input nSequence (coinbase_tx_input_nSequence in the specification).
	CoinbaseTxInputNSequence uint32 `json:"coinbase_tx_input_n_sequence"`
	// CompactSize-prefixed coinbase outputs.
	CoinbaseTxOutputs Bytes `json:"coinbase_tx_outputs"`
	// Coinbase transaction locktime.
	CoinbaseTxLocktime uint32 `json:"coinbase_tx_locktime"`
	// Merkle path hashes, deepest first.
	MerklePath []U256 `json:"merkle_path"`
}

// Kind returns the registry key of SetCustomMiningJob.
func (*SetCustomMiningJob) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetCustomMiningJob} }

// Encode appends m as a SetCustomMiningJob payload to dst.
func (m *SetCustomMiningJob) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.RequestID)
	e.B0255(m.MiningJobToken)
	e.U32(m.Version)
	e.U256(m.PrevHash)
	e.U32(m.MinNtime)
	e.U32(m.Nbits)
	e.U32(m.CoinbaseTxVersion)
	e.B0255(m.CoinbasePrefix)
	e.U32(m.CoinbaseTxInputNSequence)
	e.B064K(m.CoinbaseTxOutputs)
	e.U32(m.CoinbaseTxLocktime)
	e.Seq0255U256(m.MerklePath)
	return encodeDone(&e, dst, "SetCustomMiningJob")
}

// Decode replaces m with the SetCustomMiningJob read from payload.
func (m *SetCustomMiningJob) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.RequestID = d.U32()
	m.MiningJobToken = d.B0255(m.MiningJobToken)
	m.Version = d.U32()
	m.PrevHash = d.U256()
	m.MinNtime = d.U32()
	m.Nbits = d.U32()
	m.CoinbaseTxVersion = d.U32()
	m.CoinbasePrefix = d.B0255(m.CoinbasePrefix)
	m.CoinbaseTxInputNSequence = d.U32()
	m.CoinbaseTxOutputs = d.B064K(m.CoinbaseTxOutputs)
	m.CoinbaseTxLocktime = d.U32()
	m.MerklePath = d.Seq0255U256(m.MerklePath)
	return decodeDone(&d, "SetCustomMiningJob")
}

// SetCustomMiningJobSuccess is the SetCustomMiningJob.Success message (0x23, server to client). The custom job is accepted.
type SetCustomMiningJobSuccess struct {
	// Extended channel of the job.
	ChannelID uint32 `json:"channel_id"`
	// request_id of the SetCustomMiningJob answered.
	RequestID uint32 `json:"request_id"`
	// Server id of the job.
	JobID uint32 `json:"job_id"`
}

// Kind returns the registry key of SetCustomMiningJob.Success.
func (*SetCustomMiningJobSuccess) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgSetCustomMiningJobSuccess}
}

// Encode appends m as a SetCustomMiningJob.Success payload to dst.
func (m *SetCustomMiningJobSuccess) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.RequestID)
	e.U32(m.JobID)
	return encodeDone(&e, dst, "SetCustomMiningJob.Success")
}

// Decode replaces m with the SetCustomMiningJob.Success read from payload.
func (m *SetCustomMiningJobSuccess) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.RequestID = d.U32()
	m.JobID = d.U32()
	return decodeDone(&d, "SetCustomMiningJob.Success")
}

// SetCustomMiningJobError is the SetCustomMiningJob.Error message (0x24, server to client). The custom job is rejected.
type SetCustomMiningJobError struct {
	// Extended channel of the job.
	ChannelID uint32 `json:"channel_id"`
	// request_id of the SetCustomMiningJob answered.
	RequestID uint32 `json:"request_id"`
	// Why the job was rejected.
	ErrorCode string `json:"error_code"`
}

// Kind returns the registry key of SetCustomMiningJob.Error.
func (*SetCustomMiningJobError) Kind() Kind {
	return Kind{Ext: ExtCore, Type: MsgSetCustomMiningJobError}
}

// Encode appends m as a SetCustomMiningJob.Error payload to dst.
func (m *SetCustomMiningJobError) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.ChannelID)
	e.U32(m.RequestID)
	e.Str0255(m.ErrorCode)
	return encodeDone(&e, dst, "SetCustomMiningJob.Error")
}

// Decode replaces m with the SetCustomMiningJob.Error read from payload.
func (m *SetCustomMiningJobError) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.ChannelID = d.U32()
	m.RequestID = d.U32()
	m.ErrorCode = d.Str0255()
	return decodeDone(&d, "SetCustomMiningJob.Error")
}

// SetGroupChannel is the SetGroupChannel message (0x25, server to client). It (re)defines which channels form a group channel.
type SetGroupChannel struct {
	// Group channel redefined.
	GroupChannelID uint32 `json:"group_channel_id"`
	// Standard or extended channels in the group.
	ChannelIDs []uint32 `json:"channel_ids"`
}

// Kind returns the registry key of SetGroupChannel.
func (*SetGroupChannel) Kind() Kind { return Kind{Ext: ExtCore, Type: MsgSetGroupChannel} }

// Encode appends m as a SetGroupChannel payload to dst.
func (m *SetGroupChannel) Encode(dst []byte) ([]byte, error) {
	e := NewEncoder(dst)
	e.U32(m.GroupChannelID)
	e.Seq064KU32(m.ChannelIDs)
	return encodeDone(&e, dst, "SetGroupChannel")
}

// Decode replaces m with the SetGroupChannel read from payload.
func (m *SetGroupChannel) Decode(payload []byte) error {
	d := NewDecoder(payload)
	m.GroupChannelID = d.U32()
	m.ChannelIDs = d.Seq064KU32(m.ChannelIDs)
	return decodeDone(&d, "SetGroupChannel")
}

func init() {
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgOpenStandardMiningChannel}, Name: "OpenStandardMiningChannel", Protocol: ProtocolMining, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(OpenStandardMiningChannel) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgOpenStandardMiningChannelSuccess}, Name: "OpenStandardMiningChannel.Success", Protocol: ProtocolMining, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(OpenStandardMiningChannelSuccess) }, keys: []keyOp{opRequest32, opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgOpenMiningChannelError}, Name: "OpenMiningChannel.Error", Protocol: ProtocolMining, ChannelMsg: false, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(OpenMiningChannelError) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgOpenExtendedMiningChannel}, Name: "OpenExtendedMiningChannel", Protocol: ProtocolMining, ChannelMsg: false, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(OpenExtendedMiningChannel) }, keys: []keyOp{opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgOpenExtendedMiningChannelSuccess}, Name: "OpenExtendedMiningChannel.Success", Protocol: ProtocolMining, ChannelMsg: false, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(OpenExtendedMiningChannelSuccess) }, keys: []keyOp{opRequest32, opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgNewMiningJob}, Name: "NewMiningJob", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(NewMiningJob) }, keys: []keyOp{opChannel, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgUpdateChannel}, Name: "UpdateChannel", Protocol: ProtocolMining, ChannelMsg: true, Direction: ClientToServer, Role: RoleNotification,
		New: func() Message { return new(UpdateChannel) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgUpdateChannelError}, Name: "UpdateChannel.Error", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(UpdateChannelError) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgCloseChannel}, Name: "CloseChannel", Protocol: ProtocolMining, ChannelMsg: true, Direction: BothDirections, Role: RoleNotification,
		New: func() Message { return new(CloseChannel) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetExtranoncePrefix}, Name: "SetExtranoncePrefix", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(SetExtranoncePrefix) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSubmitSharesStandard}, Name: "SubmitSharesStandard", Protocol: ProtocolMining, ChannelMsg: true, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(SubmitSharesStandard) }, keys: []keyOp{opChannel, opSeq, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSubmitSharesExtended}, Name: "SubmitSharesExtended", Protocol: ProtocolMining, ChannelMsg: true, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(SubmitSharesExtended) }, keys: []keyOp{opChannel, opSeq, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSubmitSharesSuccess}, Name: "SubmitShares.Success", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(SubmitSharesSuccess) }, keys: []keyOp{opChannel, opLastSeq}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSubmitSharesError}, Name: "SubmitShares.Error", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(SubmitSharesError) }, keys: []keyOp{opChannel, opSeq}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgNewExtendedMiningJob}, Name: "NewExtendedMiningJob", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(NewExtendedMiningJob) }, keys: []keyOp{opChannel, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetNewPrevHash}, Name: "SetNewPrevHash", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(SetNewPrevHash) }, keys: []keyOp{opChannel, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetTarget}, Name: "SetTarget", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(SetTarget) }, keys: []keyOp{opChannel}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetCustomMiningJob}, Name: "SetCustomMiningJob", Protocol: ProtocolMining, ChannelMsg: true, Direction: ClientToServer, Role: RoleRequest,
		New: func() Message { return new(SetCustomMiningJob) }, keys: []keyOp{opChannel, opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetCustomMiningJobSuccess}, Name: "SetCustomMiningJob.Success", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleResponse,
		New: func() Message { return new(SetCustomMiningJobSuccess) }, keys: []keyOp{opChannel, opRequest32, opJob}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetCustomMiningJobError}, Name: "SetCustomMiningJob.Error", Protocol: ProtocolMining, ChannelMsg: true, Direction: ServerToClient, Role: RoleError,
		New: func() Message { return new(SetCustomMiningJobError) }, keys: []keyOp{opChannel, opRequest32}})
	register(MessageInfo{Kind: Kind{Ext: ExtCore, Type: MsgSetGroupChannel}, Name: "SetGroupChannel", Protocol: ProtocolMining, ChannelMsg: false, Direction: ServerToClient, Role: RoleNotification,
		New: func() Message { return new(SetGroupChannel) }, keys: []keyOp{opChannel}})
}

var (
	_ Message = (*OpenStandardMiningChannel)(nil)
	_ Message = (*OpenStandardMiningChannelSuccess)(nil)
	_ Message = (*OpenMiningChannelError)(nil)
	_ Message = (*OpenExtendedMiningChannel)(nil)
	_ Message = (*OpenExtendedMiningChannelSuccess)(nil)
	_ Message = (*NewMiningJob)(nil)
	_ Message = (*UpdateChannel)(nil)
	_ Message = (*UpdateChannelError)(nil)
	_ Message = (*CloseChannel)(nil)
	_ Message = (*SetExtranoncePrefix)(nil)
	_ Message = (*SubmitSharesStandard)(nil)
	_ Message = (*SubmitSharesExtended)(nil)
	_ Message = (*SubmitSharesSuccess)(nil)
	_ Message = (*SubmitSharesError)(nil)
	_ Message = (*NewExtendedMiningJob)(nil)
	_ Message = (*SetNewPrevHash)(nil)
	_ Message = (*SetTarget)(nil)
	_ Message = (*SetCustomMiningJob)(nil)
	_ Message = (*SetCustomMiningJobSuccess)(nil)
	_ Message = (*SetCustomMiningJobError)(nil)
	_ Message = (*SetGroupChannel)(nil)
)
