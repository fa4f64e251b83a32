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
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
)

// The spool keeps events that could not reach Kafka by the shutdown
// deadline, in files under Config.SpoolDir named spool-<unix ns>.bin. Each
// record is the 16-byte stream id, the value length as a uvarint, then the
// value. The next recorder started on the directory sends them before
// anything else and removes each file once its events are acknowledged (or
// spooled again into a newer file). A truncated last record, from a crash
// mid-write, is skipped with a warning: its event was never acknowledged to
// the edge as durable anyway.

const spoolPattern = "spool-*.bin"

// spoolFiles lists dir's spool files, oldest first.
func spoolFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("record: spool dir: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return nil, fmt.Errorf("record: spool dir: %w", err)
	}
	sort.Strings(files) // names carry a fixed-width timestamp
	return files, nil
}

// spoolOut is the spool file being written, opened on first use.
type spoolOut struct {
	f      *os.File
	w      *bufio.Writer
	failed bool
}

// spool appends items to the spool, reporting whether they are safe there
// (written; synced when the run ends).
func (r *Recorder) spool(items []item) bool {
	s := &r.spoolOut
	if s.failed {
		return false
	}
	if s.f == nil {
		name := filepath.Join(r.cfg.SpoolDir, fmt.Sprintf("spool-%020d.bin", time.Now().UnixNano()))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			r.log.Error("record: open spool", "err", err)
			s.failed = true
			return false
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 256<<10)
	}
	var hdr [16 + binary.MaxVarintLen64]byte
	for _, it := range items {
		copy(hdr[:16], it.key[:])
		n := binary.PutUvarint(hdr[16:], uint64(len(it.buf.b)))
		s.w.Write(hdr[:16+n])
		if _, err := s.w.Write(it.buf.b); err != nil {
			r.log.Error("record: write spool", "err", err)
			s.failed = true
			return false
		}
	}
	return true
}

// syncSpool flushes and syncs the spool file; it reports whether every
// spooled event is on disk.
func (r *Recorder) syncSpool() bool {
	s := &r.spoolOut
	if s.f == nil || s.failed {
		return !s.failed
	}
	if err := s.w.Flush(); err != nil {
		r.log.Error("record: flush spool", "err", err)
		s.failed = true
		return false
	}
	if err := s.f.Sync(); err != nil {
		r.log.Error("record: sync spool", "err", err)
		s.failed = true
		return false
	}
	return true
}

func (r *Recorder) closeSpool() {
	s := &r.spoolOut
	if s.f == nil {
		return
	}
	r.syncSpool()
	if err := s.f.Close(); err != nil && !s.failed {
		r.log.Error("record: close spool", "err", err)
	}
	s.f = nil
}

// resend sends the events of the spool files found at start, oldest first,
// in their order, and removes each file once its events are acknowledged
// or safely spooled again.
func (r *Recorder) resend(msgs []kafka.Message) {
	for _, path := range r.oldSpool {
		f, err := os.Open(path)
		if err != nil {
			r.log.Error("record: open old spool", "err", err)
			continue
		}
		br := bufio.NewReaderSize(f, 256<<10)
		n := 0
		for {
			items, err := r.readSpool(br)
			n += len(items)
			if r.flushCtx.Err() != nil {
				r.drop(items) // spooled again
			} else {
				r.write(items, msgs)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				r.log.Warn("record: old spool ends with a partial record", "file", path, "err", err)
				break
			}
		}
		f.Close()
		if r.syncSpool() {
			if err := os.Remove(path); err != nil {
				r.log.Error("record: remove old spool", "err", err)
			}
			r.log.Info("record: resent spooled events", "file", path, "events", n)
		}
	}
}

// readSpool reads up to a batch of spooled events; they count as buffered.
func (r *Recorder) readSpool(br *bufio.Reader) ([]item, error) {
	var items []item
	var bytes int64
	for len(items) < r.cfg.BatchSize && bytes < r.cfg.BatchBytes/2 {
		id := new(uuid.UUID)
		if _, err := io.ReadFull(br, id[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return items, err
			}
			return items, io.EOF
		}
		n, err := binary.ReadUvarint(br)
		if err != nil || n > uint64(r.cfg.BatchBytes) {
			return items, fmt.Errorf("record: spool record length: %v", err)
		}
		vb := &valueBuf{b: make([]byte, n)}
		if _, err := io.ReadFull(br, vb.b); err != nil {
			return items, fmt.Errorf("record: spool record: %w", err)
		}
		items = append(items, item{key: id, buf: vb})
		bytes += int64(n) + eventOverhead
		r.buffered.Add(1)
	}
	return items, nil
}
