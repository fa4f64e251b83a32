package record_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

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
