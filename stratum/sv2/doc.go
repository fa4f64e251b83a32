// Package sv2 is the Stratum V2 wire codec: the 6-byte frame header and a
// bounded frame reader and writer, every Sv2 data type, typed structs for
// the Common, Mining, Job Declaration, Template Distribution and
// extensions-negotiation messages, a registry of message ids, and a
// classifier that names a frame and extracts its correlation keys for
// metering.
//
// The package does no networking and no encryption (Noise lives in
// stratum/sv2/noise); it works on plaintext frames.
//
// Every message has Encode(dst []byte) ([]byte, error), which appends the
// payload to dst, and Decode(payload []byte) error, which reads the whole
// payload, rejects trailing bytes (SubmitSharesExtended reads them as TLV
// fields) and never panics; bounds are checked before any allocation. Decoded messages own
// their data: Decode copies what it keeps, so the payload buffer may be
// reused as soon as Decode returns. Frames whose (extension_type,
// msg_type) is not in the registry are carried as *RawMessage and pass
// through unchanged.
//
// All integers are little-endian, as the specification requires. TLV
// fields are read and written little-endian too, as the reference
// implementation does (the specification's worked example shows them
// big-endian).
package sv2
