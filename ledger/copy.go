package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// copyEncoder builds the body of a COPY ... FROM STDIN (FORMAT binary):
// the header, rows of length-prefixed fields in PostgreSQL's binary format,
// and the trailer. The meter's rows have a few fixed column types, so
// encoding them here skips pgx's per-value type planning and the round
// trip pgx.CopyFrom spends describing the table.
type copyEncoder struct{ b []byte }

// copyHeader is the binary COPY signature, flags and header extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (e *copyEncoder) reset()         { e.b = append(e.b[:0], copyHeader...) }
func (e *copyEncoder) row(fields int) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(fields)) }
func (e *copyEncoder) null()          { e.b = binary.BigEndian.AppendUint32(e.b, 0xffffffff) }
func (e *copyEncoder) finish() []byte { return binary.BigEndian.AppendUint16(e.b, 0xffff) }

func (e *copyEncoder) int8(v int64) {
	e.b = binary.BigEndian.AppendUint64(append(e.b, 0, 0, 0, 8), uint64(v))
}

func (e *copyEncoder) int4(v int32) {
	e.b = binary.BigEndian.AppendUint32(append(e.b, 0, 0, 0, 4), uint32(v))
}

func (e *copyEncoder) int2(v int16) {
	e.b = binary.BigEndian.AppendUint16(append(e.b, 0, 0, 0, 2), uint16(v))
}

func (e *copyEncoder) bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	e.b = append(e.b, 0, 0, 0, 1, b)
}

func (e *copyEncoder) uuid(v uuid.UUID) { e.b = append(append(e.b, 0, 0, 0, 16), v[:]...) }

func (e *copyEncoder) bytea(v []byte) {
	e.b = append(binary.BigEndian.AppendUint32(e.b, uint32(len(v))), v...)
}

func (e *copyEncoder) text(v string) {
	e.b = append(binary.BigEndian.AppendUint32(e.b, uint32(len(v))), v...)
}

// timestamptz encodes t as microseconds since 2000-01-01 UTC.
func (e *copyEncoder) timestamptz(t time.Time) {
	const unixToY2K = 946684800 * 1000000
	e.int8(t.Unix()*1000000 + int64(t.Nanosecond())/1000 - unixToY2K)
}

func (e *copyEncoder) nullInt8(v sql.Null[int64]) {
	if !v.Valid {
		e.null()
		return
	}
	e.int8(v.V)
}

func (e *copyEncoder) nullInt4(v sql.Null[int32]) {
	if !v.Valid {
		e.null()
		return
	}
	e.int4(v.V)
}

func (e *copyEncoder) nullText(v sql.Null[string]) {
	if !v.Valid {
		e.null()
		return
	}
	e.text(v.V)
}

func (e *copyEncoder) nullUUID(v sql.Null[uuid.UUID]) {
	if !v.Valid {
		e.null()
		return
	}
	e.uuid(v.V)
}

func (e *copyEncoder) nullTimestamptz(v sql.Null[time.Time]) {
	if !v.Valid {
		e.null()
		return
	}
	e.timestamptz(v.V)
}

// copyEncoders reuses encoding buffers across commits.
var copyEncoders = sync.Pool{New: func() any { return new(copyEncoder) }}

// copyIn runs COPY table (columns) FROM STDIN with the rows encode writes.
func copyIn(ctx context.Context, tx pgx.Tx, table string, columns []string, encode func(e *copyEncoder)) error {
	e := copyEncoders.Get().(*copyEncoder)
	defer copyEncoders.Put(e)
	e.reset()
	encode(e)
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(columns, ", ") + ") FROM STDIN (FORMAT binary)"
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(e.finish()), sql); err != nil {
		return err
	}
	return nil
}
