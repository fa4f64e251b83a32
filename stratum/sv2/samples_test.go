package sv2

// Test values for every registered message, with every field set to a
// distinctive non-zero value so that a field dropped or swapped by a
// codec shows up in round-trip comparisons.

func pattern(seed byte) U256 {
	var v U256
	for i := range v {
		v[i] = seed + byte(i)
	}
	return v
}

func u32p(v uint32) *uint32 { return &v }

func sampleMessages() []Message {
	return []Message{
		&SetupConnection{Protocol: 0, MinVersion: 2, MaxVersion: 2, Flags: 0b110, EndpointHost: "pool.example.com", EndpointPort: 34254,
			Vendor: "Bitmain", HardwareVersion: "S19 Pro", Firmware: "braiins-os-2024", DeviceID: "dev-1"},
		&SetupConnectionSuccess{UsedVersion: 2, Flags: 0b10},
		&SetupConnectionError{Flags: 0b1, ErrorCode: "unsupported-feature-flags"},
		&ChannelEndpointChanged{ChannelID: 77},
		&Reconnect{NewHost: "backup.example.com", NewPort: 3336},

		&OpenStandardMiningChannel{RequestID: 11, UserIdentity: "user.worker1", NominalHashRate: 1.1e14, MaxTarget: pattern(1)},
		&OpenStandardMiningChannelSuccess{RequestID: 11, ChannelID: 21, Target: pattern(2), ExtranoncePrefix: Bytes{1, 2, 3, 4}, GroupChannelID: 31},
		&OpenMiningChannelError{RequestID: 12, ErrorCode: "max-target-out-of-range"},
		&OpenExtendedMiningChannel{RequestID: 13, UserIdentity: "user.proxy", NominalHashRate: 2.5e15, MaxTarget: pattern(3), MinExtranonceSize: 8},
		&OpenExtendedMiningChannelSuccess{RequestID: 13, ChannelID: 22, Target: pattern(4), ExtranonceSize: 8, ExtranoncePrefix: Bytes{9, 8, 7}, GroupChannelID: 32},
		&NewMiningJob{ChannelID: 21, JobID: 101, MinNtime: u32p(1700000000), Version: 0x20000000, MerkleRoot: pattern(5)},
		&UpdateChannel{ChannelID: 21, NominalHashRate: 9.5e13, MaximumTarget: pattern(6)},
		&UpdateChannelError{ChannelID: 21, ErrorCode: "invalid-nominal-hashrate"},
		&CloseChannel{ChannelID: 21, ReasonCode: "shutdown"},
		&SetExtranoncePrefix{ChannelID: 22, ExtranoncePrefix: Bytes{0xaa, 0xbb}},
		&SubmitSharesStandard{ChannelID: 21, SequenceNumber: 5, JobID: 101, Nonce: 0xdeadbeef, Ntime: 1700000005, Version: 0x20000004},
		&SubmitSharesExtended{ChannelID: 22, SequenceNumber: 6, JobID: 102, Nonce: 0xcafebabe, Ntime: 1700000006, Version: 0x20000008,
			Extranonce: Bytes{1, 2, 3, 4, 5, 6, 7, 8},
			TLVs:       []TLV{{ExtensionType: ExtWorkerHashrateTracking, FieldType: TLVFieldUserIdentity, Value: Bytes("Worker_001")}}},
		&SubmitSharesSuccess{ChannelID: 22, LastSequenceNumber: 6, NewSubmitsAcceptedCount: 2, NewSharesSum: 1 << 40},
		&SubmitSharesError{ChannelID: 22, SequenceNumber: 7, ErrorCode: "difficulty-too-low"},
		&NewExtendedMiningJob{ChannelID: 22, JobID: 102, MinNtime: nil, Version: 0x20000000, VersionRollingAllowed: true,
			MerklePath: []U256{pattern(7), pattern(8)}, CoinbaseTxPrefix: Bytes{0x02, 0, 0, 0, 1}, CoinbaseTxSuffix: Bytes{0xff, 0xff, 0xff, 0xff, 0}},
		&SetNewPrevHash{ChannelID: 22, JobID: 102, PrevHash: pattern(9), MinNtime: 1700000001, Nbits: 0x1703a30c},
		&SetTarget{ChannelID: 22, MaximumTarget: pattern(10)},
		&SetCustomMiningJob{ChannelID: 22, RequestID: 14, MiningJobToken: Bytes("token"), Version: 0x20000000, PrevHash: pattern(11),
			MinNtime: 1700000002, Nbits: 0x1703a30c, CoinbaseTxVersion: 2, CoinbasePrefix: Bytes{3, 0x10, 0x20, 0x30},
			CoinbaseTxInputNSequence: 0xffffffff, CoinbaseTxOutputs: Bytes{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, CoinbaseTxLocktime: 0,
			MerklePath: []U256{pattern(12)}},
		&SetCustomMiningJobSuccess{ChannelID: 22, RequestID: 14, JobID: 103},
		&SetCustomMiningJobError{ChannelID: 22, RequestID: 15, ErrorCode: "invalid-mining-job-token"},
		&SetGroupChannel{GroupChannelID: 32, ChannelIDs: []uint32{21, 22, 23}},

		&AllocateMiningJobToken{UserIdentifier: "jdc-1", RequestID: 16},
		&AllocateMiningJobTokenSuccess{RequestID: 16, MiningJobToken: Bytes{0x01, 0x02}, CoinbaseTxOutputs: Bytes{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		&ProvideMissingTransactions{RequestID: 17, UnknownTxPositionList: []uint16{0, 5, 9}},
		&ProvideMissingTransactionsSuccess{RequestID: 17, TransactionList: []Bytes{{0x01, 0x02}, {}, {0x03}}},
		&DeclareMiningJob{RequestID: 17, MiningJobToken: Bytes{0x01, 0x02}, Version: 0x20000000, CoinbaseTxPrefix: Bytes{2, 0, 0, 0},
			CoinbaseTxSuffix: Bytes{0, 0, 0, 0}, WtxidList: []U256{pattern(13), pattern(14)}, ExcessData: Bytes{0xee}},
		&DeclareMiningJobSuccess{RequestID: 17, NewMiningJobToken: Bytes{0x03, 0x04}},
		&DeclareMiningJobError{RequestID: 18, ErrorCode: "missing-txs", ErrorDetails: Bytes{0x00, 0x01}},
		&PushSolution{Extranonce: Bytes{1, 2, 3}, PrevHash: pattern(15), Nonce: 42, Ntime: 1700000003, Nbits: 0x1703a30c, Version: 0x20000000},

		&CoinbaseOutputConstraints{CoinbaseOutputMaxAdditionalSize: 100, CoinbaseOutputMaxAdditionalSigops: 400},
		&NewTemplate{TemplateID: 1 << 33, FutureTemplate: true, Version: 0x20000000, CoinbaseTxVersion: 2, CoinbasePrefix: Bytes{3, 1, 2, 3},
			CoinbaseTxInputSequence: 0xfffffffe, CoinbaseTxValueRemaining: 312500000, CoinbaseTxOutputsCount: 1,
			CoinbaseTxOutputs: Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0x6a}, CoinbaseTxLocktime: 800000, MerklePath: []U256{pattern(16)}},
		&TemplateSetNewPrevHash{TemplateID: 1 << 33, PrevHash: pattern(17), HeaderTimestamp: 1700000004, NBits: 0x1703a30c, Target: pattern(18)},
		&RequestTransactionData{TemplateID: 1 << 33},
		&RequestTransactionDataSuccess{TemplateID: 1 << 33, ExcessData: Bytes{0x01}, TransactionList: []Bytes{{0xde, 0xad}, {0xbe, 0xef}}},
		&RequestTransactionDataError{TemplateID: 1<<33 + 1, ErrorCode: "stale-template-id"},
		&SubmitSolution{TemplateID: 1 << 33, Version: 0x20000000, HeaderTimestamp: 1700000005, HeaderNonce: 7, CoinbaseTx: Bytes{2, 0, 0, 0, 1}},

		&RequestExtensions{RequestID: 19, RequestedExtensions: []uint16{ExtWorkerHashrateTracking, 0x0003}},
		&RequestExtensionsSuccess{RequestID: 19, SupportedExtensions: []uint16{ExtWorkerHashrateTracking}},
		&RequestExtensionsError{RequestID: 19, UnsupportedExtensions: []uint16{0x0003}, RequiredExtensions: []uint16{0x0005}},
	}
}
