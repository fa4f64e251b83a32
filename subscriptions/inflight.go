package subscriptions

import "bytes"

// inflight is the requests sent upstream and not yet answered, in the order
// they were sent, with their raw ids kept in one arena so that tracking a
// request allocates nothing once the arena has grown to the connection's
// usual pipeline depth.
type inflight struct {
	reqs  []request
	arena []byte
	live  int // requests not yet answered
	bytes int // of their ids
}

// request is one request, or one element of a batch (the elements of a
// batch share their message's seq).
type request struct {
	seq      uint64
	off, end int // its raw id in the arena
	batch    bool
	done     bool
}

func (f *inflight) add(seq uint64, id []byte, batch bool) {
	off := len(f.arena)
	f.arena = append(f.arena, id...)
	f.reqs = append(f.reqs, request{seq: seq, off: off, end: len(f.arena), batch: batch})
	f.live++
	f.bytes += len(id)
}

func (f *inflight) id(r *request) []byte { return f.arena[r.off:r.end] }

// answered forgets the oldest request with id, reporting whether there was
// one. Answers mostly come in order, so the search usually stops at once.
func (f *inflight) answered(id []byte) bool {
	for i := range f.reqs {
		r := &f.reqs[i]
		if !r.done && bytes.Equal(f.id(r), id) {
			r.done = true
			f.live--
			f.bytes -= len(id)
			f.compact()
			return true
		}
	}
	return false
}

// compact forgets answered requests, in place, once they are at least
// half of those kept: amortised, tracking allocates nothing once the lists
// have grown to the connection's pipeline depth.
func (f *inflight) compact() {
	if f.live == 0 {
		f.reqs, f.arena = f.reqs[:0], f.arena[:0]
		if cap(f.arena) > 64<<10 {
			f.arena = nil // do not keep a burst's ids
		}
		return
	}
	if len(f.reqs) < 2*f.live+16 {
		return
	}
	n, at := 0, 0
	for _, r := range f.reqs {
		if r.done {
			continue
		}
		w := copy(f.arena[at:], f.arena[r.off:r.end]) // ids only move down
		r.off, r.end = at, at+w
		at += w
		f.reqs[n] = r
		n++
	}
	f.reqs, f.arena = f.reqs[:n], f.arena[:at]
}

// sweep removes every request of a message up to seq and calls fn with
// each message's requests (one, or a batch's), in order.
func (f *inflight) sweep(through uint64, fn func(rs []request)) {
	i := 0
	for i < len(f.reqs) {
		r := f.reqs[i]
		if r.done {
			i++
			continue
		}
		if r.seq > through {
			i++
			continue
		}
		j := i + 1
		for j < len(f.reqs) && f.reqs[j].seq == r.seq {
			j++
		}
		var live []request
		for k := i; k < j; k++ {
			if !f.reqs[k].done {
				live = append(live, f.reqs[k])
				f.reqs[k].done = true
				f.live--
				f.bytes -= f.reqs[k].end - f.reqs[k].off
			}
		}
		fn(live)
		i = j
	}
	f.compact()
}
