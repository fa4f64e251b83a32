// Package beam reads, writes and classifies the Beam node's stratum mining
// protocol: one compact JSON object per line, terminated by LF, at most
// [MaxLineSize] bytes including the LF.
//
// Miners send [Login] and [Solution]; the node sends [Job], [Cancel] and
// [Result]. [Reader] splits a stream into lines without buffering more than
// the limit, [Decode] turns a line into a typed [Message], every message
// encodes itself as the node does (compact, keys sorted, "jsonrpc":"2.0"),
// and [Writer] writes messages as lines. [Classify] extracts what metering
// needs (method, role, correlation id) without decoding the whole message,
// and [Redact] removes api_key values from a line before it is recorded.
//
// Decoding follows the node's parser (BeamMW/beam pow/stratum.cpp): the id
// is checked before the method, keys are matched exactly after JSON
// unescaping, unknown keys are ignored and, for a duplicated key, the last
// value wins. Errors carry a [Kind] telling an edge how the node would react.
//
// The package imports nothing from the rest of relaymeter and does no I/O of
// its own beyond the io.Reader and io.Writer it is given.
package beam
