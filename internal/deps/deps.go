// Package deps pins the project's chosen modules while the packages that use
// them are being written, so that concurrent work never races on go.mod.
// It is deleted once every module here is imported by real code.
package deps

import (
	_ "github.com/btcsuite/btcd/btcec/v2"
	_ "github.com/btcsuite/btcd/btcec/v2/ellswift"
	_ "github.com/btcsuite/btcd/btcec/v2/schnorr"
	_ "github.com/coder/websocket"
	_ "github.com/coder/websocket/wsjson"
	_ "github.com/google/uuid"
	_ "github.com/graph-gophers/graphql-go"
	_ "github.com/graph-gophers/graphql-go/errors"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/hkdf"
	_ "google.golang.org/protobuf/proto"
	_ "google.golang.org/protobuf/reflect/protoreflect"
	_ "google.golang.org/protobuf/runtime/protoimpl"
	_ "gopkg.in/yaml.v3"
)
