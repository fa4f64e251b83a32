package record

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A spool segment is a file of records, each
//
//	length  uint32, big-endian: the bytes of body
//	crc     uint32, big-endian: CRC-32C (Castagnoli) of body
//	body    partition uint32 big-endian | stream id (16 bytes) | event value
//
// appended in groups, each group written and fdatasynced at once.
const (
	recHeader = 8
	recFixed  = 4 + 16
	// maxRecord bounds a record's length field, so a corrupt one is seen
	// as corrupt rather than read as a huge record.
	maxRecord = 64 << 20
)

const segSuffix = ".seg"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn reports a record cut short or failing its CRC.
var errTorn = errors.New("torn or corrupt record")

// appendRecord appends one spool record to dst.
func appendRecord(dst []byte, partition int, key, value []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(recFixed+len(value)))
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	body := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = append(dst, key...)
	dst = append(dst, value...)
	binary.BigEndian.PutUint32(dst[crcAt:], crc32.Checksum(dst[body:], castagnoli))
	return dst
}

// spoolRec is a parsed spool record; key and value point into the buffer
// it was parsed from.
type spoolRec struct {
	partition  int
	key, value []byte
}

// recordLen returns the length of the record that b begins with, once its
// header is complete (ok), or errTorn for an impossible length.
func recordLen(b []byte) (n int, ok bool, err error) {
	if len(b) < recHeader {
		return 0, false, nil
	}
	body := binary.BigEndian.Uint32(b)
	if body < recFixed || body > maxRecord {
		return 0, false, fmt.Errorf("%w: length %d", errTorn, body)
	}
	return recHeader + int(body), true, nil
}

// parseRecord parses the complete record b.
func parseRecord(b []byte) (spoolRec, error) {
	body := b[recHeader:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return spoolRec{}, fmt.Errorf("%w: CRC mismatch", errTorn)
	}
	return spoolRec{
		partition: int(binary.BigEndian.Uint32(body)),
		key:       body[4:recFixed],
		value:     body[recFixed:],
	}, nil
}

// segment is one spool file.
type segment struct {
	id      uint64
	path    string
	f       *os.File // open for appending while it is the spool's current segment
	rf      *os.File // the drainer's read handle, opened on first read
	synced  int64    // bytes of whole, fsynced records
	drained int64    // bytes Kafka has acknowledged
	sealed  bool     // no more appends
}

func segPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", id, segSuffix))
}

// listSegments returns dir's segment ids, oldest first.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// scanSegment reads path's records and returns the length of its valid
// prefix, its size, and why the rest (if any) is invalid.
func scanSegment(path string) (valid, size int64, why error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, nil, err
	}
	size = fi.Size()
	br := bufio.NewReaderSize(f, 1<<20)
	var buf []byte
	for valid < size {
		hdr, err := br.Peek(recHeader)
		if err != nil {
			return valid, size, fmt.Errorf("%w: header cut short", errTorn), nil
		}
		n, _, err := recordLen(hdr)
		if err != nil {
			return valid, size, err, nil
		}
		if int64(n) > size-valid {
			return valid, size, fmt.Errorf("%w: record of %d bytes cut short at %d", errTorn, n, size-valid), nil
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return valid, size, nil, err
		}
		if _, err := parseRecord(buf); err != nil {
			return valid, size, err, nil
		}
		valid += int64(n)
	}
	return valid, size, nil, nil
}

// createSegment makes a new, empty segment file and makes its name durable.
func createSegment(dir string, id uint64) (*segment, error) {
	path := segPath(dir, id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &segment{id: id, path: path, f: f}, nil
}

// appendSync writes one group of records and waits until it is on disk.
func (g *segment) appendSync(b []byte) error {
	if _, err := g.f.Write(b); err != nil {
		return err
	}
	return datasync(g.f)
}

// seal closes the segment for appending.
func (g *segment) seal() {
	if g.f != nil {
		g.f.Close()
		g.f = nil
	}
	g.sealed = true
}

// remove deletes the segment's file.
func (g *segment) remove() error {
	g.seal()
	if g.rf != nil {
		g.rf.Close()
		g.rf = nil
	}
	return os.Remove(g.path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
