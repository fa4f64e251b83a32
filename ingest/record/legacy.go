package record

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Recorders before the spool segments kept what Kafka had not taken by
// shutdown in files spool-<unix ns>.bin of records: the 16-byte stream id,
// the value's length as a uvarint, the value. adoptLegacy moves their
// events into a segment, pinned to the partition the stream id hashes to
// now (those recorders placed keys by the same hash), then removes them.
const legacyPattern = "spool-*.bin"

// adoptLegacy converts dir's legacy spool files, oldest first, into one new
// segment; s.mu need not be held (load runs before the spool starts).
func (s *spool) adoptLegacy() error {
	files, err := filepath.Glob(filepath.Join(s.dir, legacyPattern))
	if err != nil || len(files) == 0 {
		return err
	}
	sort.Strings(files) // the names carry a fixed-width timestamp
	var buf []byte
	events := 0
	n := int(s.r.nparts.Load())
	for _, path := range files {
		var err error
		var k int
		buf, k, err = readLegacy(path, buf, n)
		if err != nil {
			s.r.log.Warn("record: spool finding: legacy spool file ends with a partial record", "kind", "spool_torn_tail",
				"file", path, "detail", err.Error())
		}
		events += k
	}
	if len(buf) > 0 {
		seg, err := createSegment(s.dir, s.nextID)
		if err != nil {
			return fmt.Errorf("record: spool: adopt legacy files: %w", err)
		}
		err = seg.appendSync(buf)
		seg.seal()
		if err != nil {
			return fmt.Errorf("record: spool: adopt legacy files: %w", err)
		}
		s.nextID++
	}
	for _, path := range files {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("record: spool: %w", err)
		}
	}
	s.r.log.Info("record: spool adopted the files of an earlier recorder version", "dir", s.dir, "files", len(files), "events", events)
	return nil
}

// readLegacy appends the records of a legacy spool file to buf as spool
// records, up to a partial last record (reported as the error).
func readLegacy(path string, buf []byte, partitions int) ([]byte, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var id [16]byte
	var val []byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, id[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return buf, n, nil
			}
			return buf, n, err
		}
		size, err := binary.ReadUvarint(br)
		if err != nil || size > maxRecord {
			return buf, n, fmt.Errorf("record length: %v", err)
		}
		if uint64(cap(val)) < size {
			val = make([]byte, size)
		}
		val = val[:size]
		if _, err := io.ReadFull(br, val); err != nil {
			return buf, n, err
		}
		buf = appendRecord(buf, partitionOf(id[:], partitions), id[:], val)
	}
}
