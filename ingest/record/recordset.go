package record

import (
	"io"

	"github.com/segmentio/kafka-go"
)

// kv is one record to produce: the stream id and the sealed event.
type kv struct{ key, value []byte }

// recordSet is a kafka.RecordReader over kvs that allocates nothing per
// record. kafka-go reads it on its connection goroutine, possibly after a
// cancelled Produce returned: a set (and the bytes it points to) given to
// a produce that ended by its context must not be reused.
type recordSet struct {
	kvs        []kv
	next       int
	rec        kafka.Record
	key, value bytesView
}

func (rs *recordSet) reset(kvs []kv) {
	rs.kvs, rs.next = kvs, 0
}

// ReadRecord returns the next record; it stays valid until the next call.
func (rs *recordSet) ReadRecord() (*kafka.Record, error) {
	if rs.next >= len(rs.kvs) {
		return nil, io.EOF
	}
	e := &rs.kvs[rs.next]
	rs.next++
	rs.key.b, rs.value.b = e.key, e.value
	rs.rec = kafka.Record{Key: &rs.key, Value: &rs.value}
	return &rs.rec, nil
}

// bytesView is a kafka.Bytes over a slice; WriteTo spares io.Copy its
// 32 KiB buffer per record.
type bytesView struct{ b []byte }

func (v *bytesView) Len() int { return len(v.b) }

func (v *bytesView) Read(p []byte) (int, error) {
	if len(v.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, v.b)
	v.b = v.b[n:]
	return n, nil
}

func (v *bytesView) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(v.b)
	v.b = v.b[n:]
	return int64(n), err
}

func (v *bytesView) Close() error { return nil }

var _ kafka.RecordReader = (*recordSet)(nil)
