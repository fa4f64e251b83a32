// Package event holds the relaymeter event contract: the protobuf schema in
// event.proto, its generated Go code, and the helpers that seal and verify
// an event's place in its stream's hash chain.
//
// Regenerate event.pb.go after editing event.proto with
//
//	go generate ./ingest/event
//
// which needs protoc (Debian: protobuf-compiler) and runs the protoc-gen-go
// version pinned in go.mod (see gen.sh).
package event

//go:generate ./gen.sh
