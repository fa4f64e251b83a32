#!/bin/sh
# Regenerates event.pb.go from event.proto. Needs protoc (Debian package
# protobuf-compiler); protoc-gen-go is built from the google.golang.org/protobuf
# version pinned in go.mod, so the output only changes when that pin does.
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
protoc --plugin=protoc-gen-go="$bin/protoc-gen-go" --go_out=. --go_opt=paths=source_relative event.proto
