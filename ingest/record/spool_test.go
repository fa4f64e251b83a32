package record_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// TestSpool: with the broker down, the events go to the spool, which Close
// leaves when its context ends; the next recorder on the directory sends
// them, in order, and removes the spool.
//
// The spool tests stop the broker rather than inject a fault: a produce
// that Close abandons may still be sent by kafka-go's connection goroutine,
// and once a fault is removed it would land, as a duplicate these tests,
// which count exactly, do not expect.
func TestSpool(t *testing.T) {
	k := startRestartable(t, 2)
	c := k.cluster()
	dir := t.TempDir()
	ctx := context.Background()
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	k.down()
	var ids []uuid.UUID
	for range 3 {
		s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID())
		for i := range 25 {
			if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		t.Fatalf("close with a spool: %v", err)
	}
	if st := r.Stats(); st.Spooled != 3*27 || st.Failed != 0 || st.Written != 0 {
		t.Fatalf("stats %+v, want %d spooled", st, 3*27)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 1 {
		t.Fatalf("spool files %v", files)
	}

	k.up(2)
	r2 := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	s, err := r2.Open(ctx, &event.StreamOpened{Service: "eth"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 2))
	for _, id := range ids {
		evs := got[id]
		if len(evs) != 27 || evs[26].GetClosed().GetMessagesToUpstream() != 25 {
			t.Fatalf("stream %s: %d events after resend", id, len(evs))
		}
	}
	if len(got) != 4 {
		t.Fatalf("%d streams, want 4", len(got))
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(files) != 0 {
		t.Fatalf("spool not removed: %v", files)
	}
	if st := r2.Stats(); st.Drained != 3*27 || st.Written != 2 || st.Buffered != 0 {
		t.Fatalf("second recorder stats %+v", st)
	}
}

// TestSpoolTruncated: a spool cut mid-record is resent up to the cut.
func TestSpoolTruncated(t *testing.T) {
	k := startRestartable(t, 1)
	c := k.cluster()
	dir := t.TempDir()
	ctx := context.Background()
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	k.down()
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 1 {
		t.Fatalf("spool files %v", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[0], fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	k.up(1)
	r2 := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 1))[s.ID()]
	if len(evs) != 5 {
		t.Fatalf("%d events resent, want the 5 before the cut", len(evs))
	}
}

// spoolSegment spools stream events with the broker down and closes the
// recorder, leaving them in one spool segment, and restarts the broker; it
// returns the segment's path, the stream and the events spooled.
func spoolSegment(t *testing.T, k *restartable, dir string, messages int) (string, *record.Stream, int) {
	t.Helper()
	r := newRecorder(t, k.cluster(), func(cfg *record.Config) { cfg.SpoolDir = dir })
	k.down()
	defer k.up(1)
	ctx := context.Background()
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range messages {
		seq, err := s.Append(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitDurable(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Spooled != uint64(messages+1) || st.Drained != 0 {
		t.Fatalf("stats %+v, want %d spooled", st, messages+1)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(files) != 1 {
		t.Fatalf("spool segments %v, want one", files)
	}
	return files[0], s, messages + 1
}

// lastRecord returns the offset of the last record of a spool segment,
// walking the length prefixes of the documented format.
func lastRecord(t *testing.T, path string) (offset, size int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for {
		n := 8 + int(binary.BigEndian.Uint32(b[off:]))
		if off+n == len(b) {
			return int64(off), int64(len(b))
		}
		if off+n > len(b) {
			t.Fatalf("segment %s: record at %d overruns the file", path, off)
		}
		off += n
	}
}

// TestSpoolTornTail damages the last record of a spool segment, as a crash
// mid-write or a bad disk would: cut short, or failing its CRC. The next
// recorder truncates that record alone, says so in a finding-style log
// line naming the file, the offset and the bytes cut, and sends every
// event before it.
func TestSpoolTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		detail string
	}{
		{"truncated", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size-5); err != nil {
				t.Fatal(err)
			}
		}, "cut short"},
		{"corrupted", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := []byte{0}
			if _, err := f.ReadAt(b, size-1); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			if _, err := f.WriteAt(b, size-1); err != nil {
				t.Fatal(err)
			}
		}, "CRC mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := startRestartable(t, 1)
			c := k.cluster()
			dir := t.TempDir()
			path, s, spooled := spoolSegment(t, k, dir, 10)
			last, size := lastRecord(t, path)
			tc.damage(t, path, size)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir, cfg.Logger = dir, logs.logger() })
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			lines := logs.lines("torn tail")
			if len(lines) != 1 {
				t.Fatalf("torn tail logs %q, want one", lines)
			}
			for _, want := range []string{"level=WARN", "kind=spool_torn_tail", "file=" + path, fmt.Sprintf("offset=%d", last),
				fmt.Sprintf("bytes=%d", fi.Size()-last), tc.detail} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("torn tail log %q lacks %q", lines[0], want)
				}
			}
			evs := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 1))[s.ID()]
			if len(evs) != spooled-1 {
				t.Fatalf("%d events sent, want the %d before the damaged one", len(evs), spooled-1)
			}
			if st := r.Stats(); st.Drained != uint64(spooled-1) {
				t.Fatalf("stats %+v, want %d drained", st, spooled-1)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(files) != 0 {
				t.Fatalf("spool not removed: %v", files)
			}
		})
	}
}

// TestSpoolLocked: a spool directory belongs to one recorder at a time; a
// second one is refused with ErrSpoolLocked until the first closes.
func TestSpoolLocked(t *testing.T) {
	c := start(t, 1)
	dir := t.TempDir()
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	_, err := record.New(record.Config{Brokers: c.Brokers, EdgeID: "edge-2", SpoolDir: dir})
	if !errors.Is(err, record.ErrSpoolLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second recorder on %s: %v, want ErrSpoolLocked naming the directory", dir, err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r2 := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir = dir })
	if err := r2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolCap: with Kafka refusing produces, the spool fills up to its
// cap and no further; then the buffer fills and Append blocks (taking no
// seq). Once Kafka is back the spool drains, the blocked Append goes
// through, and every event accepted reaches the topic.
func TestSpoolCap(t *testing.T) {
	const capBytes = 8 << 10
	c := start(t, 1)
	r := newRecorder(t, c, func(cfg *record.Config) {
		cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SpoolSegmentBytes = t.TempDir(), capBytes, 2<<10
		cfg.BufferBytes = 4 << 10
	})
	h := c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	ctx := context.Background()
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	var blockErr error
	for i := 0; i < 1000 && blockErr == nil; i++ {
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, blockErr = s.Append(actx, msg(event.Direction_CLIENT_TO_UPSTREAM, i))
		cancel()
		if blockErr == nil {
			accepted++
		}
	}
	if !errors.Is(blockErr, context.DeadlineExceeded) {
		t.Fatalf("Append with the spool full: %v after %d events, want a deadline error", blockErr, accepted)
	}
	st := r.Stats()
	if st.SpoolBytes > capBytes || st.SpoolBytes == 0 || st.Spooled == 0 || st.Buffered == 0 {
		t.Fatalf("stats %+v with the spool full, cap %d", st, capBytes)
	}
	done := make(chan error, 1)
	go func() {
		seq, err := s.Append(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, accepted))
		if err == nil {
			err = s.WaitDurable(ctx, seq)
		}
		done <- err
	}()
	h.Remove()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 1))[s.ID()]
	if len(evs) != accepted+3 {
		t.Fatalf("%d events, want %d: opened, %d accepted before the block, the blocked one, closed", len(evs), accepted+3, accepted)
	}
	if st := r.Stats(); st.Recorded != uint64(accepted+3) || st.Written+st.Drained != st.Recorded || st.Buffered != 0 {
		t.Fatalf("stats %+v, want %d recorded, each written or drained", st, accepted+3)
	}
}

// TestSpoolLegacyFiles: a recorder of the version before segments left
// spool-<ns>.bin files (stream id, uvarint length, value; the last record
// cut short by a crash). The recorder adopts them at start: their whole
// records reach the topic, each stream in one partition, and the files go.
func TestSpoolLegacyFiles(t *testing.T) {
	c := start(t, 2)
	dir := t.TempDir()
	var ids []uuid.UUID
	for f := range 2 {
		var file []byte
		for range 2 {
			id, _ := uuid.NewV7()
			ids = append(ids, id)
			var chain [event.ChainSize]byte
			for seq := uint64(1); seq <= 3; seq++ {
				ev := &event.Event{StreamId: id[:], Seq: seq, EdgeId: "old-edge", ObservedAt: 1,
					Body: &event.Event_Message{Message: msg(event.Direction_CLIENT_TO_UPSTREAM, int(seq))}}
				var val []byte
				var err error
				if val, chain, err = event.Seal(nil, ev, chain); err != nil {
					t.Fatal(err)
				}
				file = append(file, id[:]...)
				file = binary.AppendUvarint(file, uint64(len(val)))
				file = append(file, val...)
			}
		}
		if f == 1 {
			file = append(file, ids[0][:8]...) // a record cut short
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("spool-%020d.bin", 1000+f)), file, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs logBuffer
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir, cfg.Logger = dir, logs.logger() })
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 2))
	if len(got) != len(ids) {
		t.Fatalf("%d streams, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if len(got[id]) != 3 {
			t.Fatalf("stream %s: %d events, want 3", id, len(got[id]))
		}
	}
	if st := r.Stats(); st.Drained != uint64(3*len(ids)) {
		t.Fatalf("stats %+v, want %d drained", st, 3*len(ids))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "spool-*")); len(left) != 0 {
		t.Fatalf("legacy files left: %v", left)
	}
	if n := len(logs.lines("partial record")); n != 1 {
		t.Fatalf("%d warnings about the partial record, want 1:\n%s", n, logs.String())
	}
}
