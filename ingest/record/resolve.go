package record

// resolve marks items durable, written to Kafka or spooled, and returns
// them to the budget; their buffers are reused unless tainted (kafka-go
// may still read them).
func (r *Recorder) resolve(items []item, tainted, spooled bool) {
	var bytes int64
	for i := range items {
		it := &items[i]
		bytes += min(it.size, r.cfg.BufferBytes)
		// A stream's events are consecutive in seq order: resolve its last.
		if i+1 == len(items) || items[i+1].stream != it.stream {
			it.stream.resolved(it.seq, nil)
		}
		if !tainted {
			r.putBuf(it.buf)
		}
	}
	if !spooled {
		r.written.Add(uint64(len(items)))
	}
	r.release(len(items), bytes)
}

// reject resolves an event Kafka refused for good: its stream's
// WaitDurable fails from its seq on, and the other streams go on.
func (r *Recorder) reject(it item, err error, tainted bool) {
	r.rejected.Add(1)
	r.log.Error("record: Kafka refused an event for good",
		"stream", it.stream.id, "seq", it.seq, "bytes", len(it.buf.b), "err", err)
	it.stream.resolved(it.seq, err)
	if !tainted {
		r.putBuf(it.buf)
	}
	r.release(1, min(it.size, r.cfg.BufferBytes))
}

// fail gives items up: Close's context ended before they were durable.
// Their buffers are not reused: kafka-go may still hold them.
func (r *Recorder) fail(items []item) {
	var bytes int64
	for i := range items {
		bytes += min(items[i].size, r.cfg.BufferBytes)
	}
	r.failed.Add(uint64(len(items)))
	r.release(len(items), bytes)
	r.log.Error("record: events not delivered before the shutdown deadline", "events", len(items))
}
